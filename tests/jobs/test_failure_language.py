"""Why a job failed is kept with it as a Text: a front end (in this process or another one
that only shares the database) words it in its reader's language, German or Japanese, from
what was stored. On SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from bench.fakeprovider import FakeProvider, Plan, capabilities
from bot.i18n import Text, render, t
from bot.jobs import EngineConfig, JobExpired, JobFailed
from bot.jobs.batch import batch_report
from bot.models import Job, JobStatus
from bot.providers.errors import InvalidInput, Moderated
from storage import open_repository
from tests import pg

from .conftest import Harness, edit, harness_over
from .test_batch import allow_four, batch, one_at_a_time


@pytest.fixture(params=["sqlite", "postgres"])
async def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'kontext.db'}"
    url: str = request.getfixturevalue("pg_url")
    await pg.reset_database(url)
    return url


@pytest.fixture
async def any_harness(db_url: str) -> AsyncIterator[Harness]:
    repo = open_repository(db_url)
    await repo.connect()
    try:
        async with harness_over(repo) as h:
            yield h
    finally:
        await repo.close()


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    yield from pg.session_database()


async def _read_elsewhere(url: str, job_id: int) -> Job:
    """The job as another process reads it: through a connection of its own, from the
    database alone (no event, no memory of this engine)."""
    other = open_repository(url)
    await other.connect()
    try:
        job = await other.get_job(job_id)
    finally:
        await other.close()
    assert job is not None
    return job


async def test_a_provider_refusal_is_shown_in_german_and_japanese(
    any_harness: Harness, db_url: str
) -> None:
    h = any_harness
    h.provider.default = Plan(submit_error=Moderated("fake", "no", said="nsfw content detected"))
    engine = h.engine()
    await engine.start()
    job = await engine.submit(edit("x"))
    await engine.run_until_idle()
    stored = await _read_elsewhere(db_url, job.id)
    assert stored.status is JobStatus.MODERATED and isinstance(stored.failure_text(), Text)
    assert stored.error_message == (
        "Fake's safety filter refused this edit. Try a different image or prompt. "
        'Fake said: "nsfw content detected"'
    )
    assert render(stored.failure_text(), "de") == (
        "Der Sicherheitsfilter von Fake hat diese Bearbeitung abgelehnt. Versuch es mit einem "
        "anderen Bild oder Prompt. Fake sagt: „nsfw content detected“"
    )
    assert render(stored.failure_text(), "ja") == (
        "Fake の安全フィルターがこの編集を拒否しました。別の画像かプロンプトでお試しください。"
        "Fake からのメッセージ: 「nsfw content detected」"
    )
    (event,) = h.of(job.id, "failed")
    assert isinstance(event, JobFailed) and event.reason_text == stored.failure_text()
    assert event.reason == stored.error_message


async def test_the_providers_own_refusal_is_worded_with_ours(
    any_harness: Harness, db_url: str
) -> None:
    h = any_harness
    refusal = InvalidInput("fake", t("errors.provider.no_seed", provider="Fake"))
    h.provider.default = Plan(submit_error=refusal)
    engine = h.engine()
    await engine.start()
    job = await engine.submit(edit("x"))
    await engine.run_until_idle()
    stored = await _read_elsewhere(db_url, job.id)
    assert stored.error_message == (
        "Fake could not use this request: Fake does not take a seed; leave it out."
    )
    assert render(stored.failure_text(), "de") == (
        "Fake konnte diese Anfrage nicht verwenden: Fake nimmt keinen Seed; lass ihn weg."
    )
    assert render(stored.failure_text(), "ja").startswith(
        "Fake はこのリクエストを使えませんでした: "
    )


async def test_an_expired_job_says_so_in_the_readers_language(
    any_harness: Harness, db_url: str
) -> None:
    h = any_harness
    slow = FakeProvider(
        capabilities("slow", asynchronous=True, min_poll_interval=7.0),
        clock=h.clock,
        default=Plan(sync=False, finish_after=10_000.0),
    )
    h.providers["slow"] = slow
    engine = h.engine(EngineConfig(default_provider="slow", deadline_seconds=90))
    await engine.start()
    job = await engine.submit(edit("forever"))
    await engine.run_until_idle()
    stored = await _read_elsewhere(db_url, job.id)
    assert stored.status is JobStatus.EXPIRED
    assert stored.error_message == (
        "Your edit did not finish within 2 min: Slow was still working on it or not answering, "
        "so it was stopped. Please try again later."
    )
    assert render(stored.failure_text(), "de") == (
        "Deine Bearbeitung ist nicht innerhalb von 2 Min. fertig geworden: Slow hat noch daran "
        "gearbeitet oder nicht geantwortet, daher wurde sie gestoppt. Versuch es später noch "
        "einmal."
    )
    assert render(stored.failure_text(), "ja") == (
        "編集が2分以内に完了しませんでした。Slow がまだ処理中だったか応答しなかったため、"
        "中止しました。後でもう一度お試しください。"
    )
    (event,) = h.of(job.id, "expired")
    assert isinstance(event, JobExpired) and event.reason_text == stored.failure_text()


async def test_who_cancelled_is_kept_in_every_language(any_harness: Harness, db_url: str) -> None:
    h = any_harness
    engine = h.engine()
    by_moderator = await engine.submit(edit("a"))
    by_requester = await engine.submit(edit("b"))
    await engine.cancel(by_moderator.id, by_user_id=999, moderator=True)
    await engine.cancel(by_requester.id, by_user_id=100)
    first = await _read_elsewhere(db_url, by_moderator.id)
    second = await _read_elsewhere(db_url, by_requester.id)
    assert first.error_message == "Cancelled by a moderator."
    assert render(first.failure_text(), "de") == "Von einem Moderator abgebrochen."
    assert render(first.failure_text(), "ja") == "モデレーターがキャンセルしました。"
    assert second.error_message == "Cancelled by the requester."
    assert render(second.failure_text(), "de") == "Von der anfragenden Person abgebrochen."


async def test_a_batch_says_why_its_failed_image_failed(any_harness: Harness, db_url: str) -> None:
    h = any_harness
    await allow_four(h)
    single = one_at_a_time(h)
    single.script(
        "mixed", Plan(sync=False), Plan(submit_error=Moderated("single", "no", said="nope"))
    )
    engine = h.engine(EngineConfig(default_provider="single"))
    await engine.start()
    job = await engine.submit(batch("mixed", 2))  # type: ignore[arg-type]
    await engine.run_until_idle()
    done = await _read_elsewhere(db_url, job.id)
    assert done.status is JobStatus.DONE and done.error_text is None
    (failure,) = (await batch_report(h.repo, done)).failed
    assert (failure.number, failure.code) == (2, "moderated")
    assert failure.reason == (
        "Single's safety filter refused this edit. Try a different image or prompt. "
        'Single said: "nope"'
    )
    assert render(failure.text, "de") == (
        "Der Sicherheitsfilter von Single hat diese Bearbeitung abgelehnt. Versuch es mit einem "
        "anderen Bild oder Prompt. Single sagt: „nope“"
    )
    item = (await h.repo.batch_items(job.id))[1]
    assert render(item.failure_text(), "ja") == render(failure.text, "ja")
    assert render(item.failure_text(), "ja").startswith("Single の安全フィルターがこの編集を拒否")


async def test_a_batch_whose_images_all_failed_keeps_the_first_reason(
    any_harness: Harness, db_url: str
) -> None:
    h = any_harness
    single = one_at_a_time(h)
    single.default = Plan(submit_error=Moderated("single", "no"))
    engine = h.engine(EngineConfig(default_provider="single"))
    await engine.start()
    job = await engine.submit(batch("bad", 2))  # type: ignore[arg-type]
    await engine.run_until_idle()
    ended = await _read_elsewhere(db_url, job.id)
    assert ended.status is JobStatus.MODERATED
    assert render(ended.failure_text(), "ja") == (
        "Single の安全フィルターがこの編集を拒否しました。別の画像かプロンプトでお試しください。"
    )
