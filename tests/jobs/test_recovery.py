"""Crash recovery in process: a dead worker's jobs are resumed by status once its lease ends."""

from __future__ import annotations

import asyncio
from typing import Any

from bench.fakeprovider import FakeProvider, Plan
from bot.jobs import EngineConfig
from bot.jobs.stored import encode_finished
from bot.models import Job, JobStatus
from bot.providers.base import Finished, GenerationRequest, OutputImage, Submitted

from .conftest import T0, Harness, edit

LEASE = 30.0


async def _left_by_dead_worker(harness: Harness, prompt: str, to: JobStatus, **fields: object):
    """A job a dead worker claimed and moved to ``to`` (its lease still running)."""
    engine = harness.engine()
    job = await engine.submit(edit(prompt))
    (claimed,) = await harness.repo.claim(
        worker_id="dead", provider="fake", now=T0, lease_seconds=LEASE
    )
    assert claimed.id == job.id
    if to is not JobStatus.SUBMITTING:
        moved = await harness.repo.transition(
            job.id, expected=JobStatus.SUBMITTING, to=to, now=T0, **fields
        )
        assert moved is not None
    return job


async def _restart(harness: Harness) -> None:
    engine = harness.engine(EngineConfig(default_provider="fake", lease_seconds=LEASE))
    await engine.start()
    await engine.run_until_idle()


async def test_running_job_with_a_handle_is_polled_never_resubmitted(harness: Harness) -> None:
    harness.provider.default = Plan(sync=False)
    submitted = await harness.provider.submit((await _request(harness, "painted")).model_copy())
    assert isinstance(submitted, Submitted)
    job = await _left_by_dead_worker(
        harness, "painted", JobStatus.RUNNING, provider_handle=submitted.handle
    )
    await _restart(harness)
    final = await harness.repo.get_job(job.id)
    assert final is not None and final.status is JobStatus.DONE
    assert harness.provider.submits["painted"] == 1  # only the dead worker's submission
    assert harness.provider.polls[submitted.handle] == 1
    # Not before the lease expired.
    history = await harness.repo.job_history(job.id)
    assert history[-1][1] >= T0 + LEASE
    assert list(harness.deliverer.delivered) == [job.id]


async def test_submitting_job_without_a_handle_is_submitted_again(harness: Harness) -> None:
    job = await _left_by_dead_worker(harness, "again", JobStatus.SUBMITTING)
    await _restart(harness)
    final = await harness.repo.get_job(job.id)
    assert final is not None and final.status is JobStatus.DONE
    assert harness.provider.submits["again"] == 1


async def test_saved_sync_result_is_downloaded_without_calling_the_provider(
    harness: Harness,
) -> None:
    from bench.fakeprovider import png_bytes

    result = Finished(outputs=(OutputImage(data=png_bytes(5, 5)),), credits=2.0)
    job = await _left_by_dead_worker(
        harness, "saved", JobStatus.RUNNING, result_json=encode_finished(result)
    )
    await _restart(harness)
    final = await harness.repo.get_job(job.id)
    assert final is not None and final.status is JobStatus.DONE
    assert harness.provider.submits["saved"] == 0
    (image,) = harness.deliverer.delivered[job.id]
    assert image.output.width == 5


async def test_downloading_job_downloads_again(harness: Harness) -> None:
    from bench.fakeprovider import png_bytes

    result = Finished(outputs=(OutputImage(data=png_bytes(6, 6)),))
    job = await _left_by_dead_worker(
        harness, "dl", JobStatus.DOWNLOADING, result_json=encode_finished(result)
    )
    await _restart(harness)
    final = await harness.repo.get_job(job.id)
    assert final is not None and final.status is JobStatus.DONE
    assert harness.provider.submits["dl"] == 0


async def test_delivering_job_is_delivered_again_exactly_once(harness: Harness) -> None:
    from bench.fakeprovider import png_bytes
    from bot.models import OutputFormat

    job = await _left_by_dead_worker(harness, "post", JobStatus.DELIVERING)
    await harness.repo.add_output(
        job.id,
        index=0,
        data=png_bytes(7, 7),
        format=OutputFormat.PNG,
        width=7,
        height=7,
        nsfw=False,
        now=T0,
        retention_seconds=None,
    )
    await _restart(harness)
    final = await harness.repo.get_job(job.id)
    assert final is not None and final.status is JobStatus.DONE
    assert harness.deliverer.attempts == [job.id]
    assert harness.deliverer.delivered[job.id][0].output.width == 7
    assert harness.provider.submits["post"] == 0


async def test_stop_releases_leases_so_a_restart_resumes_at_once(harness: Harness) -> None:
    harness.provider.default = Plan(sync=False, finish_after=50.0)
    first = harness.engine(EngineConfig(default_provider="fake", lease_seconds=LEASE))
    await first.start()
    job = await first.submit(edit("long"))
    while (
        first.running() == 0 or (await harness.repo.get_job(job.id)).status is not JobStatus.RUNNING
    ):  # type: ignore[union-attr]
        await harness.clock.sleep(0)
    await first.stop()

    second = harness.engine(EngineConfig(default_provider="fake", lease_seconds=LEASE))
    await second.start()
    assert second.running() == 1  # resumed at start, no lease to wait out
    await second.run_until_idle()
    final = await harness.repo.get_job(job.id)
    assert final is not None and final.status is JobStatus.DONE
    assert harness.provider.submits["long"] == 1


async def test_live_workers_keep_their_leases(harness: Harness) -> None:
    harness.provider.default = Plan(sync=False, finish_after=200.0)
    config = EngineConfig(default_provider="fake", lease_seconds=LEASE)
    busy = harness.engine(config)
    other = harness.engine(config)
    await busy.start()
    await other.start()
    job = await busy.submit(edit("long"))
    await busy.run_until_idle()
    final = await harness.repo.get_job(job.id)
    assert final is not None and final.status is JobStatus.DONE
    assert harness.provider.submits["long"] == 1
    assert other.running() == 0 and harness.deliverer.attempts == [job.id]


async def _request(harness: Harness, prompt: str):
    from bot.providers.base import GenerationRequest

    return GenerationRequest(prompt=prompt)


async def test_a_stalled_heartbeat_never_lets_the_worker_take_its_own_job_again(
    harness: Harness,
) -> None:
    """The event loop stalls for more than a lease right after a heartbeat, while a submit is
    with the provider: the lease has lapsed when the same engine next looks for expired
    jobs. It keeps the job it is still running instead of queueing it to be sent again."""
    entered = asyncio.Event()
    release = asyncio.Event()
    reclaimed = asyncio.Event()

    class Slow(FakeProvider):
        async def submit(self, request: GenerationRequest) -> Submitted | Finished:
            entered.set()
            await release.wait()
            return await super().submit(request)

    harness.providers["fake"] = slow = Slow(harness.provider.capabilities, clock=harness.clock)
    repo = harness.repo
    heartbeat, reclaim = repo.heartbeat, repo.reclaim_expired

    async def stalling_heartbeat(**kwargs: Any) -> int:
        extended = await heartbeat(**kwargs)
        harness.clock.advance(LEASE + 1)  # the loop stalls right after the write
        return extended

    async def noted_reclaim(**kwargs: Any) -> list[Job]:
        taken = await reclaim(**kwargs)
        reclaimed.set()
        return taken

    repo.heartbeat = stalling_heartbeat  # type: ignore[method-assign]
    repo.reclaim_expired = noted_reclaim  # type: ignore[method-assign]
    engine = harness.engine(EngineConfig(default_provider="fake", lease_seconds=LEASE))
    await engine.start()
    reclaimed.clear()  # the start looks once, with nothing held yet
    job = await engine.submit(edit("stalled"))
    await entered.wait()
    harness.clock.advance(LEASE / 3)  # the next heartbeat is due
    await reclaimed.wait()
    mine = await repo.get_job(job.id)
    assert mine is not None and mine.status is JobStatus.SUBMITTING
    assert mine.lease_owner == engine.worker_id
    release.set()
    await engine.run_until_idle()
    final = await repo.get_job(job.id)
    assert final is not None and final.status is JobStatus.DONE
    assert slow.submits["stalled"] == 1
    assert harness.deliverer.attempts == [job.id]
