"""Jobs claimed ahead of a free slot: started at once, cancellable, expired, given back."""

from __future__ import annotations

from bench.fakeprovider import FakeProvider, Plan, capabilities
from bot.jobs import EngineConfig, JobEngine
from bot.models import GuildSettings, JobStatus

from .conftest import T0, Harness, edit, until_running


async def _setup(harness: Harness, **config: object) -> tuple[FakeProvider, JobEngine]:
    two = FakeProvider(
        capabilities("two", asynchronous=True, concurrency=2, min_poll_interval=10.0),
        clock=harness.clock,
        default=Plan(sync=False, finish_after=10.0),
    )
    harness.providers["two"] = two
    for guild in range(1, 7):
        await harness.repo.save_guild_settings(GuildSettings(guild_id=guild), now=T0)
    config.setdefault("prefetch", 2)
    engine = harness.engine(EngineConfig(default_provider="two", **config))  # type: ignore[arg-type]
    return two, engine


async def _statuses(harness: Harness, ids: list[int]) -> list[JobStatus]:
    found = []
    for job_id in ids:
        job = await harness.repo.get_job(job_id)
        assert job is not None
        found.append(job.status)
    return found


async def test_claimed_ahead_jobs_start_the_moment_a_slot_frees(harness: Harness) -> None:
    two, engine = await _setup(harness)
    ids = [(await engine.submit(edit(f"job {g}", guild=g, user=g))).id for g in range(1, 6)]
    await engine.start()
    await until_running(harness, ids[0])
    await until_running(harness, ids[1])
    # Two running at the provider, two more claimed ahead (the prefetch), one still queued.
    assert await _statuses(harness, ids) == [
        JobStatus.RUNNING,
        JobStatus.RUNNING,
        JobStatus.SUBMITTING,
        JobStatus.SUBMITTING,
        JobStatus.QUEUED,
    ]
    assert two.submits["job 3"] == 0
    await engine.run_until_idle()
    starts = [e.at - T0 for e in harness.events if e.kind == "started"]
    assert starts == [0.0, 0.0, 10.0, 10.0, 20.0]
    assert two.max_in_flight <= 2


async def test_cancelling_a_claimed_ahead_job_never_submits_it(harness: Harness) -> None:
    two, engine = await _setup(harness)
    ids = [(await engine.submit(edit(f"job {g}", guild=g, user=g))).id for g in range(1, 5)]
    await engine.start()
    await until_running(harness, ids[1])
    await engine.cancel(ids[2], by_user_id=3)
    await engine.run_until_idle()
    assert two.submits["job 3"] == 0
    assert await _statuses(harness, ids) == [
        JobStatus.DONE,
        JobStatus.DONE,
        JobStatus.CANCELLED,
        JobStatus.DONE,
    ]


async def test_claimed_ahead_job_expires_at_its_deadline(harness: Harness) -> None:
    two, engine = await _setup(harness, deadline_seconds=5)
    ids = [(await engine.submit(edit(f"job {g}", guild=g, user=g))).id for g in range(1, 4)]
    await engine.start()
    await until_running(harness, ids[1])
    await engine.run_until_idle()
    (expired,) = [e for e in harness.events if e.kind == "expired" and e.job.id == ids[2]]
    assert expired.at == T0 + 5
    assert two.submits["job 3"] == 0


async def test_stop_gives_claimed_ahead_jobs_back_to_the_queue(harness: Harness) -> None:
    _, engine = await _setup(harness)
    ids = [(await engine.submit(edit(f"job {g}", guild=g, user=g))).id for g in range(1, 5)]
    await engine.start()
    await until_running(harness, ids[1])
    await engine.stop()
    assert (await _statuses(harness, ids))[2:] == [JobStatus.QUEUED, JobStatus.QUEUED]
    assert await harness.repo.count_queued() == 2


async def test_no_prefetch_for_rate_limited_providers(harness: Harness) -> None:
    paced = FakeProvider(
        capabilities("paced", concurrency=2, rate_per_minute=1), clock=harness.clock
    )
    harness.providers["paced"] = paced
    engine = harness.engine(EngineConfig(default_provider="paced"))
    ids = [(await engine.submit(edit(f"job {g}", guild=g, user=g))).id for g in range(1, 4)]
    await engine.start()
    await engine.run_until_idle()
    assert await _statuses(harness, ids) == [JobStatus.DONE] * 3
    # The third job stayed queued (not claimed) while it waited for the rate.
    history = await harness.repo.job_history(ids[2])
    assert [status for status, _ in history][:2] == ["queued", "submitting"]
    assert history[1][1] == T0 + 120  # a burst of one, then one a minute


def test_adaptive_prefetch_covers_a_claim_only_for_short_jobs(harness: Harness) -> None:
    from bot.jobs.lanes import Lane as _Lane
    from bot.jobs.ratelimit import ProviderGate

    gate = ProviderGate(harness.clock, concurrency=8, rate_per_minute=None, burst=1)
    lane = _Lane(name="p", provider=harness.provider, gate=gate)
    assert lane.prefetch == 0  # nothing learnt yet
    lane.claim_seconds, lane.hold_seconds = 0.002, 20.0  # real providers: seconds per job
    assert lane.prefetch == 0
    lane.claim_seconds, lane.hold_seconds = 0.002, 0.05
    assert lane.prefetch == 1
    lane.claim_seconds, lane.hold_seconds = 0.002, 0.0001  # instant jobs: cover the claim
    assert lane.prefetch == 8
    paced = ProviderGate(harness.clock, concurrency=8, rate_per_minute=2, burst=2)
    assert _Lane(name="p", provider=harness.provider, gate=paced, hold_seconds=0.001).prefetch == 0
