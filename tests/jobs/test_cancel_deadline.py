"""Cancellation (who may, and in which states) and the overall deadline."""

from __future__ import annotations

import asyncio

import pytest

from bench.fakeprovider import FakeProvider, Plan, capabilities
from bot.jobs import (
    AlreadyFinished,
    EngineConfig,
    JobCancelled,
    JobEvent,
    JobExpired,
    JobNotFound,
    NotAllowed,
)
from bot.models import JobStatus
from bot.providers.base import Finished, GenerationRequest, Submitted
from bot.providers.errors import UpstreamError

from .conftest import T0, Harness, edit
from .conftest import until_running as _until_running


async def test_queued_job_is_removed_by_its_requester(harness: Harness) -> None:
    engine = harness.engine()
    job = await engine.submit(edit("x"))
    cancelled = await engine.cancel(job.id, by_user_id=100)
    assert cancelled.status is JobStatus.CANCELLED
    assert await harness.repo.count_queued() == 0
    await engine.start()
    await engine.run_until_idle()
    assert harness.provider.submits["x"] == 0
    (event,) = harness.of(job.id, "cancelled")
    assert isinstance(event, JobCancelled) and event.by_user_id == 100


async def test_only_the_requester_or_a_moderator_may_cancel(harness: Harness) -> None:
    engine = harness.engine()
    job = await engine.submit(edit("x"))
    with pytest.raises(NotAllowed) as caught:
        await engine.cancel(job.id, by_user_id=999)
    assert "or a moderator" in caught.value.user_message
    still = await harness.repo.get_job(job.id)
    assert still is not None and still.status is JobStatus.QUEUED
    cancelled = await engine.cancel(job.id, by_user_id=999, moderator=True)
    assert cancelled.error_message == "Cancelled by a moderator."


async def test_finished_and_unknown_jobs_get_clear_answers(harness: Harness) -> None:
    engine = harness.engine()
    await engine.start()
    job = await engine.submit(edit("x"))
    await engine.run_until_idle()
    with pytest.raises(AlreadyFinished) as caught:
        await engine.cancel(job.id, by_user_id=100)
    assert "already finished (done)" in caught.value.user_message
    with pytest.raises(JobNotFound):
        await engine.cancel(12345, by_user_id=100)


async def test_running_job_is_cancelled_at_the_provider_and_its_slot_freed(
    harness: Harness,
) -> None:
    one = FakeProvider(
        capabilities("one", asynchronous=True, concurrency=1, min_poll_interval=5.0),
        clock=harness.clock,
        default=Plan(sync=False, finish_after=60.0),
    )
    harness.providers["one"] = one
    engine = harness.engine(EngineConfig(default_provider="one"))
    await engine.start()
    first = await engine.submit(edit("long", user=1))
    second = await engine.submit(edit("next", user=2))
    await _until_running(harness, first.id)
    harness.clock.advance(5)

    await engine.cancel(first.id, by_user_id=1)
    await engine.run_until_idle()

    (handle,) = one.handle_of("long")
    assert one.cancels == [handle]
    assert first.id not in harness.deliverer.delivered
    done = await harness.repo.get_job(second.id)
    assert done is not None and done.status is JobStatus.DONE
    assert harness.of(second.id, "started")[0].at == T0 + 5  # the slot freed at once
    assert harness.kinds(first.id)[-1] == "cancelled"


async def test_cancel_during_submission_cancels_the_late_handle(harness: Harness) -> None:
    gate = asyncio.Event()
    entered = asyncio.Event()

    class Blocking(FakeProvider):
        async def submit(self, request: GenerationRequest) -> Submitted | Finished:
            entered.set()
            await gate.wait()
            return Submitted(handle="late-handle")

    blocking = Blocking(capabilities("blocking", asynchronous=True), clock=harness.clock)
    harness.providers["blocking"] = blocking
    engine = harness.engine(EngineConfig(default_provider="blocking"))
    await engine.start()
    job = await engine.submit(edit("x"))
    await entered.wait()
    await engine.cancel(job.id, by_user_id=100)
    gate.set()
    await engine.run_until_idle()
    assert blocking.cancels == ["late-handle"]
    final = await harness.repo.get_job(job.id)
    assert final is not None and final.status is JobStatus.CANCELLED
    assert final.provider_handle is None


async def test_delivering_job_can_no_longer_be_cancelled(harness: Harness) -> None:
    engine = harness.engine()
    job = await engine.submit(edit("x"))
    await harness.repo.claim(worker_id="other", provider="fake", now=T0, lease_seconds=30)
    await harness.repo.transition(
        job.id, expected=JobStatus.SUBMITTING, to=JobStatus.DELIVERING, now=T0
    )
    with pytest.raises(AlreadyFinished) as caught:
        await engine.cancel(job.id, by_user_id=100)
    assert "being posted" in caught.value.user_message


async def test_queued_job_expires_at_its_deadline(harness: Harness) -> None:
    from bot.models import GuildSettings, JobKind, NewJob

    await harness.repo.save_guild_settings(GuildSettings(guild_id=1, max_guild_running=1), now=T0)
    # Another worker holds the guild's only running place for a long time.
    await harness.repo.enqueue(
        NewJob(
            guild_id=1, channel_id=1, user_id=1, kind=JobKind.IMAGINE, prompt="b", provider="fake"
        ),
        now=T0,
    )
    await harness.repo.claim(worker_id="other", provider="fake", now=T0, lease_seconds=10_000)
    engine = harness.engine()
    expired_seen = asyncio.Event()

    async def on_expired(event: JobEvent) -> None:
        if event.kind == "expired":
            expired_seen.set()

    engine.events.add(on_expired)
    await engine.start()
    harness.clock.advance(100)
    waiting = await engine.submit(edit("waiting", user=2))
    harness.clock.advance(600)
    await expired_seen.wait()

    expired = await harness.repo.get_job(waiting.id)
    assert expired is not None and expired.status is JobStatus.EXPIRED
    assert expired.finished_at == T0 + 700  # created at T0+100, 600 s deadline
    assert await harness.repo.count_queued() == 0
    (event,) = harness.of(waiting.id, "expired")
    assert isinstance(event, JobExpired)
    assert "did not finish within 10 min" in event.reason
    assert harness.provider.submits["waiting"] == 0


async def test_running_job_expires_and_is_cancelled_at_the_provider(harness: Harness) -> None:
    one = FakeProvider(
        capabilities("one", asynchronous=True, min_poll_interval=7.0),
        clock=harness.clock,
        default=Plan(sync=False, finish_after=10_000.0),
    )
    harness.providers["one"] = one
    engine = harness.engine(EngineConfig(default_provider="one", deadline_seconds=60))
    await engine.start()
    job = await engine.submit(edit("forever"))
    await engine.run_until_idle()
    final = await harness.repo.get_job(job.id)
    assert final is not None and final.status is JobStatus.EXPIRED
    assert final.finished_at == T0 + 60  # the poll wait was cut short by the deadline
    assert one.cancels == one.handle_of("forever")
    assert harness.kinds(job.id)[-1] == "expired"


async def test_a_retry_that_would_pass_the_deadline_expires_instead(harness: Harness) -> None:
    harness.provider.default = Plan(
        submit_error=UpstreamError("fake", "down", nothing_billed=True),
    )
    engine = harness.engine(EngineConfig(default_provider="fake", deadline_seconds=3))
    await engine.start()
    job = await engine.submit(edit("x"))
    await engine.run_until_idle()
    final = await harness.repo.get_job(job.id)
    assert final is not None and final.status is JobStatus.EXPIRED
    # The first retry fits (about 2 s), the second (about 4 s more) would not: no waiting.
    assert harness.provider.submits["x"] == 2
    assert final.finished_at is not None and final.finished_at < T0 + 3
