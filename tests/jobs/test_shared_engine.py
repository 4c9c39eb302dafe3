"""Engines on one PostgreSQL database, each with its own connection pool as separate processes
would have: work queued by one wakes another through the database, and a cancel made in one
stops the job another holds (which then tells the provider)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import pytest

from bench.fakeprovider import FakeProvider, Plan, capabilities
from bot.jobs import EngineConfig, JobEngine
from bot.models import JobStatus
from storage import open_repository
from storage.sql import Repository
from tests import pg

from .conftest import Harness, RecordingDeliverer, edit, harness_over, until_running

#: Long enough that only a notification can wake an engine within a test.
NO_SAFETY_POLL = EngineConfig(default_provider="fake", safety_poll_seconds=3600.0)


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    yield from pg.session_database()


@pytest.fixture
async def shared(pg_url: str) -> AsyncIterator[tuple[Harness, Repository]]:
    """A harness whose engines use one pool, and a second pool on the same database."""
    await pg.reset_database(pg_url)
    worker_repo, front_repo = open_repository(pg_url), open_repository(pg_url)
    await worker_repo.connect()
    await front_repo.connect()
    try:
        async with harness_over(worker_repo) as h:
            yield h, front_repo
    finally:
        await front_repo.close()
        await worker_repo.close()


def _front(h: Harness, repo: Repository) -> tuple[JobEngine, FakeProvider]:
    """A front end's engine (never started): it queues and cancels, and runs nothing."""
    provider = FakeProvider(capabilities("fake", concurrency=2), clock=h.clock)
    engine = JobEngine(
        repo, {"fake": provider}, RecordingDeliverer(), clock=h.clock, config=NO_SAFETY_POLL
    )
    return engine, provider


async def test_a_cancel_in_another_process_stops_the_job_held_here(
    shared: tuple[Harness, Repository],
) -> None:
    h, front_repo = shared
    h.provider.default = Plan(sync=False, finish_after=10_000.0)  # never finishes by itself
    worker = h.engine(NO_SAFETY_POLL)
    await worker.start()
    front, front_provider = _front(h, front_repo)

    job = await front.submit(edit("long"))  # the worker hears of it from the database
    await until_running(h, job.id)
    held = worker._active[job.id].task
    (handle,) = h.provider.handle_of("long")

    await front.cancel(job.id, by_user_id=100)
    # The manual clock never moves: only the notification can end the worker's poll loop.
    await asyncio.wait_for(held, 10)
    assert worker.running() == 0
    final = await h.repo.get_job(job.id)
    assert final is not None and final.status is JobStatus.CANCELLED
    # The holder told the provider; the front end, which holds nothing, did not.
    assert h.provider.cancels == [handle]
    assert front_provider.cancels == []
    assert h.provider.submits["long"] == 1


async def test_the_process_holding_a_job_it_cancels_tells_the_provider_once(
    shared: tuple[Harness, Repository],
) -> None:
    h, _ = shared
    h.provider.default = Plan(sync=False, finish_after=10_000.0)
    worker = h.engine(NO_SAFETY_POLL)
    await worker.start()
    job = await worker.submit(edit("mine"))
    await until_running(h, job.id)
    held = worker._active[job.id].task
    await worker.cancel(job.id, by_user_id=100)
    await asyncio.wait_for(held, 10)
    # Its own notification comes back too: that must not cancel at the provider again.
    queued = await worker.submit(edit("next"))  # a later notification, so the first was read
    await until_running(h, queued.id)
    assert h.provider.cancels == h.provider.handle_of("mine")


async def test_a_worker_takes_only_its_share_of_the_account(
    shared: tuple[Harness, Repository],
) -> None:
    h, front_repo = shared
    h.provider.default = Plan(sync=False, finish_after=10_000.0)
    h.providers["fake"] = FakeProvider(
        capabilities("fake", concurrency=3), clock=h.clock, default=h.provider.default
    )
    h.provider = h.providers["fake"]
    small = h.engine(EngineConfig(default_provider="fake", worker_concurrency=1))
    whole = h.engine(EngineConfig(default_provider="fake"))
    assert (small.concurrency("fake"), whole.concurrency("fake")) == (1, 3)
    front, _ = _front(h, front_repo)
    jobs = [await front.submit(edit(f"job {g}", guild=g, user=g)) for g in range(1, 6)]
    await small.start()
    await until_running(h, jobs[0].id)
    await whole.start()
    await until_running(h, jobs[2].id)  # the account's other two slots
    running = await h.repo.list_jobs(statuses=[JobStatus.RUNNING, JobStatus.SUBMITTING])
    assert len(running) == 3  # the account is full: the rest wait in the queue
    assert small.running() == 1 and whole.running() == 2
