"""Batches: one job of 1–4 images, in one request where the provider can, else one request
per image; partial failures kept; a restart never resubmits an accepted request."""

from __future__ import annotations

import asyncio

import pytest

from bench.fakeprovider import FakeProvider, Plan, capabilities
from bot.creative_models import BatchItemStatus
from bot.jobs import EngineConfig, JobEvent, LimitReached
from bot.jobs.batch import batch_report, batch_seeds
from bot.models import GuildSettings, JobParams, JobStatus
from bot.providers.base import Finished, GenerationRequest, Submitted
from bot.providers.errors import InvalidInput, Moderated, RateLimited

from .conftest import T0, Harness, edit, until_running

LEASE = 30.0


def one_at_a_time(harness: Harness, name: str = "single", **plan: object) -> FakeProvider:
    """A provider that makes one image per request (like WaveSpeed)."""
    caps = capabilities(name, asynchronous=True, concurrency=2).model_copy(
        update={"max_num_images": 1}
    )
    provider = FakeProvider(caps, clock=harness.clock, default=Plan(sync=False, **plan))  # type: ignore[arg-type]
    harness.providers[name] = provider
    return provider


def batch(prompt: str, count: int, **kwargs: object) -> object:
    request = edit(prompt, **kwargs)  # type: ignore[arg-type]
    return request.model_copy(update={"params": JobParams(num_images=count)})


async def until_delayed(harness: Harness, job_id: int) -> None:
    """Wait (on events, never on time) until the job went back to the queue to retry."""
    seen = asyncio.Event()

    async def watch(event: JobEvent) -> None:
        if event.job.id == job_id and event.kind == "delayed":
            seen.set()

    for engine in harness.engines:
        engine.events.add(watch)
    await seen.wait()
    for engine in harness.engines:
        engine.events.remove(watch)


async def allow_four(harness: Harness) -> None:
    await harness.repo.save_guild_settings(GuildSettings(guild_id=1, max_user_active=4), now=T0)


async def test_a_provider_with_num_images_gets_one_request(harness: Harness) -> None:
    await allow_four(harness)
    harness.provider.default = Plan(outputs=4)
    engine = harness.engine()
    await engine.start()
    job = await engine.submit(batch("four", 4))  # type: ignore[arg-type]
    await engine.run_until_idle()
    assert harness.provider.submits["four"] == 1
    assert harness.provider.requests[0].num_images == 4
    images = harness.deliverer.delivered[job.id]
    assert [i.output.number for i in images] == [1, 2, 3, 4]
    report = await batch_report(harness.repo, (await harness.repo.get_job(job.id)))  # type: ignore[arg-type]
    assert report.delivered == (1, 2, 3, 4) and not report.failed
    assert await harness.repo.batch_items(job.id) == []


async def test_one_request_per_image_with_different_seeds_delivered_once(
    harness: Harness,
) -> None:
    await allow_four(harness)
    single = one_at_a_time(harness, finish_after=10.0)
    engine = harness.engine(EngineConfig(default_provider="single"))
    await engine.start()
    job = await engine.submit(batch("split", 4))  # type: ignore[arg-type]
    await engine.run_until_idle()
    assert single.submits["split"] == 4
    assert all(r.num_images == 1 for r in single.requests)
    seeds = [r.seed for r in single.requests]
    assert len(set(seeds)) == 4 and all(s is not None for s in seeds)
    assert list(harness.deliverer.delivered) == [job.id]
    assert [i.output.number for i in harness.deliverer.delivered[job.id]] == [1, 2, 3, 4]
    done = await harness.repo.get_job(job.id)
    assert done is not None and done.status is JobStatus.DONE
    assert done.credits == 4.0  # the four requests' credits, summed
    assert harness.kinds(job.id).count("done") == 1
    (usage,) = await harness.repo.usage(guild_id=1, since_day="2000-01-01")
    assert (usage.jobs, usage.images, usage.credits) == (1, 4, 4.0)


async def test_a_chosen_seed_numbers_the_batch(harness: Harness) -> None:
    caps = capabilities("s").model_copy(update={"max_seed": 10})
    assert batch_seeds(3, caps, 9, lambda: 0.5) == [9, 10, 1]
    no_seed = caps.model_copy(update={"seed": False})
    assert batch_seeds(2, no_seed, 9, lambda: 0.5) == [None, None]


async def test_partial_failure_keeps_the_rest_and_says_which(harness: Harness) -> None:
    await allow_four(harness)
    single = one_at_a_time(harness)
    single.script(
        "mixed",
        Plan(sync=False),
        Plan(submit_error=Moderated("single", "flagged")),
        Plan(sync=False, finish=InvalidInput("single", "The image could not be read.")),
        Plan(sync=False),
    )
    engine = harness.engine(EngineConfig(default_provider="single"))
    await engine.start()
    job = await engine.submit(batch("mixed", 4))  # type: ignore[arg-type]
    await engine.run_until_idle()
    done = await harness.repo.get_job(job.id)
    assert done is not None and done.status is JobStatus.DONE
    assert [i.output.number for i in harness.deliverer.delivered[job.id]] == [1, 4]
    report = await batch_report(harness.repo, done)
    assert report.partial and report.delivered == (1, 4)
    assert [(f.number, f.code) for f in report.failed] == [(2, "moderated"), (3, "bad_input")]
    assert "safety filter" in report.failed[0].reason
    assert "could not be read" in report.failed[1].reason


async def test_every_image_failing_ends_the_job_with_the_reason(harness: Harness) -> None:
    single = one_at_a_time(harness)
    single.default = Plan(submit_error=Moderated("single", "flagged"))
    engine = harness.engine(EngineConfig(default_provider="single"))
    await engine.start()
    job = await engine.submit(batch("bad", 2))  # type: ignore[arg-type]
    await engine.run_until_idle()
    ended = await harness.repo.get_job(job.id)
    assert ended is not None and ended.status is JobStatus.MODERATED
    assert job.id not in harness.deliverer.delivered


async def test_restart_mid_batch_polls_saved_handles_and_never_resubmits(
    harness: Harness,
) -> None:
    await allow_four(harness)
    single = one_at_a_time(harness, finish_after=100.0)
    # The third request is rate-limited: the job goes back to the queue with two accepted.
    single.script(
        "crash",
        Plan(sync=False, finish_after=100.0),
        Plan(sync=False, finish_after=100.0),
        Plan(submit_error=RateLimited("single", "slow down", retry_after=20.0)),
    )
    first = harness.engine(EngineConfig(default_provider="single", lease_seconds=LEASE))
    await first.start()
    job = await first.submit(batch("crash", 4))  # type: ignore[arg-type]
    await until_delayed(harness, job.id)
    items = await harness.repo.batch_items(job.id)
    accepted = [i.provider_handle for i in items if i.status is BatchItemStatus.RUNNING]
    assert len(accepted) == 2
    await first.stop()  # the process goes away; a new one takes over

    second = harness.engine(EngineConfig(default_provider="single", lease_seconds=LEASE))
    await second.start()
    await second.run_until_idle()
    done = await harness.repo.get_job(job.id)
    assert done is not None and done.status is JobStatus.DONE
    assert single.submits["crash"] == 5  # 2 accepted + 1 rate-limited + the last 2
    assert all(single.polls[h] >= 1 for h in accepted if h)
    assert len({r.seed for r in single.requests}) == 4  # the retry kept its seed
    assert [i.output.number for i in harness.deliverer.delivered[job.id]] == [1, 2, 3, 4]


async def test_a_dead_worker_mid_batch_is_resumed_by_handle(harness: Harness) -> None:
    single = one_at_a_time(harness, finish_after=30.0)
    engine = harness.engine(EngineConfig(default_provider="single", lease_seconds=LEASE))
    job = await engine.submit(batch("dead", 3))  # type: ignore[arg-type]
    (claimed,) = await harness.repo.claim(
        worker_id="dead", provider="single", now=T0, lease_seconds=LEASE
    )
    items = await harness.repo.init_batch_items(claimed.id, [5, 6, 7], now=T0)
    from bot.jobs.stored import build_request

    request = await build_request(harness.repo, claimed)
    handle = await single.submit(request.model_copy(update={"num_images": 1, "seed": 5}))
    await harness.repo.update_batch_item(
        claimed.id,
        items[0].index,
        now=T0,
        status=BatchItemStatus.RUNNING,
        provider_handle=handle.handle,  # type: ignore[union-attr]
    )
    # The worker died here, its job still "submitting" with one request accepted.
    await engine.start()
    await engine.run_until_idle()
    done = await harness.repo.get_job(job.id)
    assert done is not None and done.status is JobStatus.DONE
    assert single.submits["dead"] == 3
    assert sorted(r.seed for r in single.requests) == [5, 6, 7]
    assert single.polls[handle.handle] >= 1  # type: ignore[union-attr]


async def test_cancelling_a_running_batch_cancels_every_request(harness: Harness) -> None:
    single = one_at_a_time(harness, finish_after=100.0)
    engine = harness.engine(EngineConfig(default_provider="single"))
    await engine.start()
    job = await engine.submit(batch("stop", 3, user=5))  # type: ignore[arg-type]
    await until_running(harness, job.id)
    await engine.cancel(job.id, by_user_id=5)
    await engine.run_until_idle()
    assert sorted(single.cancels) == sorted(single.handle_of("stop"))
    assert len(single.cancels) == 3
    assert job.id not in harness.deliverer.delivered


async def test_a_batch_counts_its_size_against_the_member_limits(harness: Harness) -> None:
    await harness.repo.save_guild_settings(
        GuildSettings(guild_id=1, max_user_active=3, daily_quota=5), now=T0
    )
    engine = harness.engine()
    await engine.submit(batch("two", 2))  # type: ignore[arg-type]
    with pytest.raises(LimitReached) as refused:
        await engine.submit(batch("two more", 2))  # type: ignore[arg-type]
    assert "A batch of 2 images counts as 2 edits" in refused.value.user_message
    assert "1 free" in refused.value.user_message
    await engine.submit(batch("one", 1))  # type: ignore[arg-type]


async def test_cancelling_a_batch_back_in_the_queue_cancels_the_accepted_requests(
    harness: Harness,
) -> None:
    single = one_at_a_time(harness, finish_after=100.0)
    single.script(
        "wait",
        Plan(sync=False, finish_after=100.0),
        Plan(submit_error=RateLimited("single", "slow down", retry_after=50.0)),
    )
    engine = harness.engine(EngineConfig(default_provider="single"))
    await engine.start()
    job = await engine.submit(batch("wait", 3, user=5))  # type: ignore[arg-type]
    await until_delayed(harness, job.id)
    await engine.cancel(job.id, by_user_id=5)
    await engine.run_until_idle()
    assert single.cancels == single.handle_of("wait") and len(single.cancels) == 1


@pytest.mark.parametrize(
    ("retry_after", "cancelled"),
    [
        (50.0, 2),  # retried in time: both requests run, then the deadline passes
        (500.0, 1),  # a retry would pass the deadline: it expires at once
    ],
)
async def test_a_batch_that_expires_stops_every_accepted_request(
    harness: Harness, retry_after: float, cancelled: int
) -> None:
    single = one_at_a_time(harness, finish_after=1000.0)
    single.script(
        "late",
        Plan(sync=False, finish_after=1000.0),
        Plan(submit_error=RateLimited("single", "slow down", retry_after=retry_after)),
    )
    engine = harness.engine(EngineConfig(default_provider="single", deadline_seconds=100.0))
    await engine.start()
    job = await engine.submit(batch("late", 2))  # type: ignore[arg-type]
    await engine.run_until_idle()
    ended = await harness.repo.get_job(job.id)
    assert ended is not None and ended.status is JobStatus.EXPIRED
    assert single.cancels == single.handle_of("late") and len(single.cancels) == cancelled


async def test_a_batch_cancelled_while_submitting_submits_no_more(harness: Harness) -> None:
    entered = asyncio.Event()
    release = asyncio.Event()

    class Slow(FakeProvider):
        async def submit(self, request: GenerationRequest) -> Submitted | Finished:
            result = await super().submit(request)
            entered.set()
            await release.wait()
            return result

    caps = capabilities("slow", asynchronous=True).model_copy(update={"max_num_images": 1})
    slow = Slow(caps, clock=harness.clock, default=Plan(sync=False, finish_after=100.0))
    harness.providers["slow"] = slow
    await allow_four(harness)
    engine = harness.engine(EngineConfig(default_provider="slow"))
    await engine.start()
    job = await engine.submit(batch("stop early", 4, user=5))  # type: ignore[arg-type]
    await entered.wait()  # the first request is with the provider
    await engine.cancel(job.id, by_user_id=5)
    release.set()
    await engine.run_until_idle()
    assert slow.submits["stop early"] == 1
    assert slow.cancels == slow.handle_of("stop early")


async def test_a_rate_limit_past_the_deadline_keeps_the_accepted_images(
    harness: Harness,
) -> None:
    single = one_at_a_time(harness)
    single.script(
        "partly",
        Plan(sync=False, finish_after=10.0),
        Plan(submit_error=RateLimited("single", "slow down", retry_after=500.0)),
    )
    engine = harness.engine(EngineConfig(default_provider="single", deadline_seconds=100.0))
    await engine.start()
    job = await engine.submit(batch("partly", 3))  # type: ignore[arg-type]
    await engine.run_until_idle()
    done = await harness.repo.get_job(job.id)
    assert done is not None and done.status is JobStatus.DONE
    assert [i.output.number for i in harness.deliverer.delivered[job.id]] == [1]
    report = await batch_report(harness.repo, done)
    assert [(f.number, f.code) for f in report.failed] == [(2, "rate_limited"), (3, "rate_limited")]
    assert single.submits["partly"] == 2
