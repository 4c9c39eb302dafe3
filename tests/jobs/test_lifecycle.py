"""A job's way through the engine: sync and async providers, events, outputs, usage."""

from __future__ import annotations

from bench.fakeprovider import FakeProvider, Plan, capabilities
from bot.jobs import EngineConfig, JobDone, JobProgress, JobQueued
from bot.jobs.limits import utc_day
from bot.models import JobStatus
from bot.providers.base import Pending

from .conftest import T0, Harness, edit


async def test_sync_provider_job_is_persisted_run_and_delivered(harness: Harness) -> None:
    engine = harness.engine()
    await engine.start()
    job = await engine.submit(edit("paint it red"))
    stored = await harness.repo.get_job(job.id)
    assert stored is not None and stored.status is JobStatus.QUEUED
    assert stored.deadline_at == T0 + 600

    await engine.run_until_idle()

    done = await harness.repo.get_job(job.id)
    assert done is not None and done.status is JobStatus.DONE
    assert harness.kinds(job.id) == ["queued", "started", "done"]
    history = [status for status, _ in await harness.repo.job_history(job.id)]
    # Bytes came with the answer: kept as outputs at once, so no separate download step.
    assert history == ["queued", "submitting", "delivering", "done"]
    images = harness.deliverer.delivered[job.id]
    assert len(images) == 1 and images[0].data.startswith(b"\x89PNG")
    outputs = await harness.repo.outputs_for_job(job.id)
    assert [o.width for o in outputs] == [8]
    assert await harness.repo.get_blob(outputs[0].content_hash) == images[0].data
    (event,) = harness.of(job.id, "done")
    assert isinstance(event, JobDone) and event.images[0].output.id == outputs[0].id
    # The provider got the reference bytes back from storage.
    (request,) = harness.provider.requests
    assert request.prompt == "paint it red" and request.references[0].width == 16
    assert request.references[0].mime == "image/png"
    usage = await harness.repo.usage(guild_id=1, since_day=utc_day(T0))
    assert [(u.user_id, u.jobs, u.images, u.credits) for u in usage] == [(100, 1, 1, 1.0)]


async def test_async_provider_is_polled_with_backoff_and_progress(harness: Harness) -> None:
    slow = FakeProvider(
        capabilities("slow", asynchronous=True, min_poll_interval=2.0), clock=harness.clock
    )
    harness.providers["slow"] = slow
    slow.script(
        "wave",
        Plan(
            sync=False,
            polls=(
                Pending(status="queued"),
                Pending(status="processing", progress=0.5),
                Pending(status="processing", progress=0.5),
            ),
            outputs=2,
            credits=3.5,
        ),
    )
    engine = harness.engine(EngineConfig(default_provider="slow", poll_max_interval=3.0))
    await engine.start()
    job = await engine.submit(edit("wave"))
    queued = harness.of(job.id, "queued")[0]
    assert isinstance(queued, JobQueued) and queued.position == 1
    assert queued.eta_seconds == 30.0  # no history yet: the configured default

    await engine.run_until_idle()

    done = await harness.repo.get_job(job.id)
    assert done is not None and done.status is JobStatus.DONE and done.credits == 3.5
    (handle,) = slow.handle_of("wave")
    assert done.provider_handle == handle
    assert slow.polls[handle] == 4 and slow.submits["wave"] == 1
    progress = [e for e in harness.of(job.id, "progress") if isinstance(e, JobProgress)]
    assert [(p.status, p.progress) for p in progress] == [("queued", None), ("processing", 0.5)]
    # Polls waited 2 s, then 3 s (backoff, capped), then 3 s: 8 s on the clock.
    assert harness.clock.now() == T0 + 8.0
    assert len(harness.deliverer.delivered[job.id]) == 2
    history = [status for status, _ in await harness.repo.job_history(job.id)]
    assert history == ["queued", "submitting", "running", "downloading", "delivering", "done"]
    usage = await harness.repo.usage(guild_id=1, since_day=utc_day(T0))
    assert [(u.jobs, u.images, u.credits) for u in usage] == [(1, 2, 3.5)]


async def test_eta_learns_from_recent_durations(harness: Harness) -> None:
    slow = FakeProvider(
        capabilities("slow", asynchronous=True, min_poll_interval=5.0, concurrency=1),
        clock=harness.clock,
        default=Plan(sync=False, finish_after=20.0),
    )
    harness.providers["slow"] = slow
    engine = harness.engine(EngineConfig(default_provider="slow", poll_max_interval=5.0))
    await engine.start()
    await engine.submit(edit("first"))
    await engine.run_until_idle()
    assert await harness.repo.recent_durations("slow") == [20.0]

    await engine.stop()  # hold the queue still while it fills
    harness.clock.advance(61)  # past the estimate's cache
    jobs = [await engine.submit(edit(f"next {i}", user=200 + i)) for i in range(3)]
    etas = [e.eta_seconds for e in harness.events if isinstance(e, JobQueued)][1:]
    positions = [e.position for e in harness.events if isinstance(e, JobQueued)][1:]
    assert positions == [1, 2, 3]
    assert etas == [20.0, 40.0, 60.0]
    await engine.start()
    await engine.run_until_idle()
    for job in jobs:
        latest = await harness.repo.get_job(job.id)
        assert latest is not None and latest.status is JobStatus.DONE


async def test_status_message_is_remembered(harness: Harness) -> None:
    engine = harness.engine()
    job = await engine.submit(edit("x"))
    updated = await engine.set_status_message(job.id, message_id=555, thread_id=777)
    assert updated is not None and (updated.status_message_id, updated.thread_id) == (555, 777)
    fetched = await engine.get_job(job.id)
    assert fetched is not None and fetched.status_message_id == 555
    position, eta = await engine.queue_eta(fetched)
    assert (position, eta) == (1, 30.0)
