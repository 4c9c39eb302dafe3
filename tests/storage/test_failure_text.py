"""A job's (and a batch item's) failure reason is stored as a Text beside its English words,
on both backends; rows from before migration 10 keep their English words."""

from __future__ import annotations

from bot.creative_models import BatchItemStatus
from bot.i18n import Text, render, t
from bot.jobs import messages
from bot.models import JobParams, JobStatus
from storage import migrate, open_repository
from storage.sql import Repository

from .conftest import T0, new_job
from .undo import back_to

OLD_WORDS = "fal.ai refused this edit: Nope."


def _refusal() -> Text:
    return t(
        "errors.provider.quoted",
        message=messages.rate_limited("fal.ai", 61),
        provider="fal.ai",
        said="slow down",
    )


async def test_a_stored_reason_is_read_back_as_its_text(repo: Repository) -> None:
    job = await repo.enqueue(new_job(), now=T0)
    reason = _refusal()
    failed = await repo.transition(
        job.id,
        expected=JobStatus.QUEUED,
        to=JobStatus.FAILED,
        now=T0 + 1,
        error_code="rate_limited",
        **messages.stored(reason),
    )
    read = await repo.get_job(job.id)
    for found in (failed, read):
        assert found is not None and found.failure_text() == reason
        assert found.error_message == str(reason)
        assert render(found.failure_text(), "de") == (
            "fal.ai bremst den Bot und hat ihn gebeten, 2 Min. zu warten – länger, als eine "
            "Bearbeitung dauern darf. Versuch es später noch einmal. fal.ai sagt: „slow down“"
        )
        assert render(found.failure_text(), "ja").endswith("fal.ai からのメッセージ: 「slow down」")


async def test_a_batch_items_reason_is_stored_as_its_text(repo: Repository) -> None:
    job = await repo.enqueue(
        new_job().model_copy(update={"params": JobParams(num_images=2)}), now=T0
    )
    await repo.init_batch_items(job.id, [1, 2], now=T0)
    reason = messages.bad_output("fal.ai")
    await repo.update_batch_item(
        job.id,
        1,
        now=T0,
        status=BatchItemStatus.FAILED,
        error_code="no_image",
        **messages.stored(reason),
    )
    first, second = await repo.batch_items(job.id)
    assert first.failure_text() == "" and first.error_text is None
    assert second.failure_text() == reason
    assert render(second.failure_text(), "ja") == (
        "fal.ai から使える画像ではないものが返ってきました。もう一度お試しください。"
    )


async def test_a_reason_kept_only_in_english_is_shown_in_english(repo: Repository) -> None:
    job = await repo.enqueue(new_job(), now=T0)
    ended = await repo.transition(
        job.id,
        expected=JobStatus.QUEUED,
        to=JobStatus.FAILED,
        now=T0,
        error_code="refused",
        error_message=OLD_WORDS,
        error_text='{"key": "jobs.failure.from_a_newer_version", "params": {}}',
    )
    assert ended is not None and ended.failure_text() == OLD_WORDS
    assert render(ended.failure_text(), "de") == OLD_WORDS


# --- migration 10 -----------------------------------------------------------------------------


async def _old_rows(url: str) -> tuple[int, int]:
    """A failed job and a failed batch item as the code before migration 10 wrote them."""
    repo = open_repository(url)
    await repo.connect()
    try:
        job = await repo.enqueue(new_job(), now=T0)
        await repo.transition(
            job.id,
            expected=JobStatus.QUEUED,
            to=JobStatus.FAILED,
            now=T0,
            error_code="refused",
            error_message=OLD_WORDS,
        )
        batch = await repo.enqueue(
            new_job(user_id=11).model_copy(update={"params": JobParams(num_images=2)}), now=T0
        )
        await repo.init_batch_items(batch.id, [1, 2], now=T0)
        await repo.update_batch_item(
            batch.id,
            0,
            now=T0,
            status=BatchItemStatus.FAILED,
            error_code="refused",
            error_message=OLD_WORDS,
        )
        return job.id, batch.id
    finally:
        await repo.close()


async def test_migration_10_keeps_old_reasons_in_english(fresh_db_url: str) -> None:
    await migrate(fresh_db_url)
    job_id, batch_id = await _old_rows(fresh_db_url)
    await back_to(fresh_db_url, 9)
    assert await migrate(fresh_db_url) >= 10
    repo = open_repository(fresh_db_url)
    await repo.connect()
    try:
        job = await repo.get_job(job_id)
        assert job is not None and job.error_text is None
        assert job.failure_text() == OLD_WORDS
        for language in ("de", "ja"):
            assert render(job.failure_text(), language) == OLD_WORDS
        item = (await repo.batch_items(batch_id))[0]
        assert item.error_text is None and item.failure_text() == OLD_WORDS
        # New reasons are kept as texts from now on.
        again = await repo.enqueue(new_job(user_id=12), now=T0)
        expired = await repo.transition(
            again.id,
            expected=JobStatus.QUEUED,
            to=JobStatus.EXPIRED,
            now=T0,
            error_code="expired",
            **messages.stored(messages.expired(600)),
        )
        assert expired is not None
        assert render(expired.failure_text(), "de").startswith(
            "Deine Bearbeitung ist nicht innerhalb von 10 Min. fertig geworden"
        )
    finally:
        await repo.close()
