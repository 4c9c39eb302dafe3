"""The engine on PostgreSQL: the same rules hold on the multi-process backend."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from bench.fakeprovider import FakeProvider, Plan, capabilities
from bot.jobs import EngineConfig
from bot.models import JobStatus
from bot.providers.errors import UpstreamError
from storage import open_repository
from tests import pg

from .conftest import Harness, edit, harness_over


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    yield from pg.session_database()


@pytest.fixture
async def pg_harness(pg_url: str) -> AsyncIterator[Harness]:
    await pg.reset_database(pg_url)
    repo = open_repository(pg_url)
    await repo.connect()
    try:
        async with harness_over(repo) as h:
            yield h
    finally:
        await repo.close()


async def test_fair_run_fallback_and_resume_on_postgres(pg_harness: Harness) -> None:
    h = pg_harness
    backup = FakeProvider(capabilities("backup"), clock=h.clock)
    h.providers["backup"] = backup
    h.provider.script(
        "down", *(Plan(submit_error=UpstreamError("fake", "down", nothing_billed=True)),) * 3
    )
    h.provider.script("slow", Plan(sync=False, finish_after=20.0))
    engine = h.engine(EngineConfig(default_provider="fake", fallback_provider="backup"))
    jobs = [
        await engine.submit(edit("a", guild=1, user=1)),
        await engine.submit(edit("b", guild=1, user=1)),
        await engine.submit(edit("c", guild=2, user=2)),
        await engine.submit(edit("down", guild=3, user=3)),
        await engine.submit(edit("slow", guild=4, user=4)),
    ]
    await engine.start()
    await engine.run_until_idle()
    for job in jobs:
        final = await h.repo.get_job(job.id)
        assert final is not None and final.status is JobStatus.DONE, final
    order = [e.job.prompt for e in h.events if e.kind == "started"]
    assert order[:2] == ["a", "c"]  # guild 2 went before guild 1's second job
    moved = await h.repo.get_job(jobs[3].id)
    assert moved is not None and moved.provider == "backup" and backup.submits["down"] == 1
    assert sorted(h.deliverer.delivered) == sorted(j.id for j in jobs)
