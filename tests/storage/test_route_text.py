"""Why a job went to its provider is stored as a Text beside its English words, on both
backends, and worded from the database in German and Japanese; rows from before migration 11
(and texts this version cannot word) keep their English words."""

from __future__ import annotations

from bench.fakeprovider import FakeProvider, capabilities
from bot.clock import ManualClock
from bot.i18n import render
from bot.jobs.routing import Router
from bot.models import JobStatus
from bot.providers.base import Provider
from storage import migrate, open_repository
from storage.sql import Repository

from .conftest import T0, new_job
from .undo import back_to

TYPICAL = {"fast": 10.0, "slow": 30.0, "slower": 95.0}
OLD_WORDS = "Fal: the bot's default provider."

FASTEST = {
    "en": "Fast: expected in about 10 s (0 ahead, about 10 s each, 2 at once); "
    "Slow about 30 s, Slower about 1 min 35 s.",
    "de": "Fast: voraussichtlich fertig in etwa 10 s (0 davor, je etwa 10 s, "
    "2 gleichzeitig); zum Vergleich: Slow etwa 30 s, Slower etwa 1 Min. 35 s.",
    "ja": "Fast: 約10秒で完了予定（待ち 0 件、1 件あたり約10秒、同時に 2 件）。"
    "ほかのサービス: Slow 約30秒、Slower 約1分35秒。",
}
MOVED = {
    "en": "Fast is not answering; Slow: the only allowed provider that can do this, "
    "expected in about 30 s (0 ahead, about 30 s each, 2 at once).",
    "de": "Fast antwortet nicht; Slow: der einzige erlaubte Dienst, der das kann; "
    "voraussichtlich fertig in etwa 30 s (0 davor, je etwa 30 s, 2 gleichzeitig).",
    "ja": "Fast が応答していません。Slow: これを処理できる唯一の許可されたサービスです。"
    "約30秒で完了予定（待ち 0 件、1 件あたり約30秒、同時に 2 件）。",
}


def _router(repo: Repository) -> Router:
    clock = ManualClock(T0)
    providers: dict[str, Provider] = {
        name: FakeProvider(capabilities(name), clock=clock) for name in TYPICAL
    }

    async def typical(name: str) -> float:
        return TYPICAL[name]

    return Router(providers, repo, lambda name: 2, typical)


def _any(provider: Provider) -> None:
    """Every provider can serve the request."""


async def test_a_route_is_stored_as_its_text_and_worded_in_every_language(
    repo: Repository,
) -> None:
    route = await _router(repo).choose(["slow", "slower", "fast"], _any)
    assert route.provider == "fast"
    job = await repo.enqueue(
        new_job(provider=route.provider).model_copy(update=route.columns()), now=T0
    )
    read = await repo.get_job(job.id)
    for found in (job, read):
        assert found is not None and found.route_reason_text() == route.reason
        assert found.route_reason == FASTEST["en"]
        for language, words in FASTEST.items():
            assert render(found.route_reason_text(), language) == words


async def test_a_fallbacks_reason_is_stored_when_the_job_moves(repo: Repository) -> None:
    job = await repo.enqueue(new_job(provider="fast"), now=T0)
    route = await _router(repo).choose(["slow"], _any, moved_from="fast")
    moved = await repo.transition(
        job.id,
        expected=JobStatus.QUEUED,
        to=JobStatus.QUEUED,
        now=T0 + 1,
        provider=route.provider,
        **route.columns(),
    )
    read = await repo.get_job(job.id)
    for found in (moved, read):
        assert found is not None and found.provider == "slow"
        assert found.route_reason == MOVED["en"]
        for language, words in MOVED.items():
            assert render(found.route_reason_text(), language) == words


async def test_a_reason_kept_only_in_english_is_shown_in_english(repo: Repository) -> None:
    legacy = await repo.enqueue(
        new_job(provider="fal").model_copy(update={"route_reason": OLD_WORDS}), now=T0
    )
    newer = await repo.enqueue(
        new_job(provider="fal", user_id=11).model_copy(
            update={
                "route_reason": OLD_WORDS,
                "route_text": '{"key": "jobs.route.from_a_newer_version", "params": {}}',
            }
        ),
        now=T0,
    )
    unrouted = await repo.enqueue(new_job(provider="fal", user_id=12), now=T0)
    for job in (legacy, newer):
        assert job.route_reason_text() == OLD_WORDS
        assert render(job.route_reason_text(), "de") == OLD_WORDS
    assert unrouted.route_reason_text() == ""


# --- migration 11 -----------------------------------------------------------------------------


async def test_migration_11_keeps_old_reasons_in_english(fresh_db_url: str) -> None:
    await migrate(fresh_db_url)
    repo = open_repository(fresh_db_url)
    await repo.connect()
    try:
        old = await repo.enqueue(
            new_job(provider="fal").model_copy(update={"route_reason": OLD_WORDS}), now=T0
        )
    finally:
        await repo.close()
    await back_to(fresh_db_url, 10)
    assert await migrate(fresh_db_url) >= 11
    repo = open_repository(fresh_db_url)
    await repo.connect()
    try:
        job = await repo.get_job(old.id)
        assert job is not None and job.route_text is None
        for language in ("en", "de", "ja"):
            assert render(job.route_reason_text(), language) == OLD_WORDS
        # New reasons are kept as texts from now on.
        route = await _router(repo).choose(["slow", "slower", "fast"], _any)
        new = await repo.enqueue(
            new_job(provider=route.provider, user_id=11).model_copy(update=route.columns()),
            now=T0,
        )
        assert render(new.route_reason_text(), "de") == FASTEST["de"]
    finally:
        await repo.close()
