"""Routing on the injected clock: a guild allows two providers of different speeds and limits;
jobs go where they are expected to finish soonest, a burst keeps both busy, pins and
capabilities are respected, and the fallback on an outage uses the same choice."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest

from bench.fakeprovider import FakeProvider, Plan, capabilities
from bot.clock import ManualClock
from bot.i18n import render
from bot.jobs import EngineConfig, JobEngine, JobEvent, UnknownProvider
from bot.jobs.routing import allowed_providers, expected_seconds
from bot.models import GuildSettings, Job, JobStatus
from bot.providers.errors import UpstreamError
from storage.sql import Repository

from .conftest import T0, RecordingDeliverer, edit

FAST_SECONDS, FAST_SLOTS = 10.0, 2
SLOW_SECONDS, SLOW_SLOTS = 30.0, 4


@dataclass
class Bench:
    repo: Repository
    clock: ManualClock
    engine: JobEngine
    fast: FakeProvider
    slow: FakeProvider
    events: list[JobEvent] = field(default_factory=list)
    measured: dict[str, object] = field(default_factory=dict)  # numbers for the design note

    async def sink(self, event: JobEvent) -> None:
        self.events.append(event)

    def times(self, kind: str) -> dict[int, float]:
        return {e.job.id: e.at for e in self.events if e.kind == kind}


def _provider(name: str, slots: int, seconds: float, clock: ManualClock) -> FakeProvider:
    caps = capabilities(name, asynchronous=True, concurrency=slots, max_references=4)
    return FakeProvider(caps, clock=clock, default=Plan(sync=False, finish_after=seconds))


@pytest.fixture
async def bench(repo: Repository) -> AsyncIterator[Bench]:
    clock = ManualClock(T0)
    fast = _provider("fast", FAST_SLOTS, FAST_SECONDS, clock)
    slow = _provider("slow", SLOW_SLOTS, SLOW_SECONDS, clock)
    engine = JobEngine(
        repo,
        {"fast": fast, "slow": slow},
        RecordingDeliverer(),
        clock=clock,
        config=EngineConfig(default_provider="fast", poll_max_interval=1.0),
        rng=random.Random(7),
    )
    found = Bench(repo, clock, engine, fast, slow)
    engine.events.add(found.sink)
    await repo.save_guild_settings(
        GuildSettings(
            guild_id=1,
            providers=("slow", "fast"),  # preference: slow first
            max_user_active=100,
            max_guild_running=100,
            max_guild_queue=1000,
            daily_quota=0,
        ),
        now=T0,
    )
    yield found
    await engine.stop()


async def _learn(bench: Bench) -> None:
    """Two pinned jobs on each provider, so both have recent durations to go by."""
    await bench.engine.start()
    for name in ("fast", "slow"):
        for n in range(2):
            await bench.engine.submit(
                edit(f"warm {name} {n}", user=900 + n).model_copy(update={"provider": name})
            )
    await bench.engine.run_until_idle()
    bench.clock.advance(60)  # the engine refreshes its duration estimates once a minute


def test_an_admin_lists_providers_in_order() -> None:
    known = {"fal", "bfl", "replicate"}
    assert allowed_providers("fal, BFL fal", known) == ("fal", "bfl")
    assert allowed_providers("none", known) == allowed_providers("  ", known) == ()
    with pytest.raises(UnknownProvider, match=r"Unknown provider 'midjourney'\. This bot has: bfl"):
        allowed_providers("fal, midjourney", known)


async def test_expected_time_formula() -> None:
    assert expected_seconds(0, 10, 2) == 10  # a free slot: just the job itself
    assert expected_seconds(4, 10, 2) == 30  # two rounds to wait, then the job
    assert expected_seconds(4, 30, 4) == 60


async def test_an_idle_fast_provider_beats_the_preferred_slow_one(bench: Bench) -> None:
    await _learn(bench)
    job = await bench.engine.submit(edit("one"))
    assert job.route_reason is not None, job
    assert job.provider == "fast", job.route_reason
    assert job.route_reason.startswith("Fast: expected in about 10 s (0 ahead")
    assert "Slow about 30 s" in job.route_reason
    await bench.engine.stop()


async def test_a_burst_splits_so_both_stay_busy(bench: Bench) -> None:
    await _learn(bench)
    started = bench.clock.now()
    jobs: list[Job] = []
    for n in range(24):
        jobs.append(await bench.engine.submit(edit(f"burst {n}", user=n)))
    await bench.engine.run_until_idle()
    await bench.engine.stop()

    chosen = [j.provider for j in jobs]
    on_fast, on_slow = chosen.count("fast"), chosen.count("slow")
    # The sequential choice the formula makes, replayed: each job went to the lower estimate.
    fast_ahead = slow_ahead = 0
    for name in chosen:
        fast_e = expected_seconds(fast_ahead, FAST_SECONDS, FAST_SLOTS)
        slow_e = expected_seconds(slow_ahead, SLOW_SECONDS, SLOW_SLOTS)
        assert name == ("fast" if fast_e < slow_e else "slow")  # a tie: slow is preferred
        fast_ahead += name == "fast"
        slow_ahead += name == "slow"
    assert (on_fast, on_slow) == (16, 8)

    done = bench.times("done")
    finished = [done[j.id] - started for j in jobs]
    assert all(j.id in done for j in jobs)
    makespan = max(finished)
    bench.measured = {
        "split": (on_fast, on_slow),
        "makespan": makespan,
        "fast_last": max(f for f, j in zip(finished, jobs, strict=True) if j.provider == "fast"),
        "slow_last": max(f for f, j in zip(finished, jobs, strict=True) if j.provider == "slow"),
        "reasons": [j.route_reason for j in jobs[:6]],
    }
    # Both providers ran at their full account concurrency while they had work.
    assert bench.fast.max_in_flight <= FAST_SLOTS
    starts = bench.times("started")
    assert _peak([(starts[j.id], done[j.id]) for j in jobs if j.provider == "fast"]) == FAST_SLOTS
    assert _peak([(starts[j.id], done[j.id]) for j in jobs if j.provider == "slow"]) == SLOW_SLOTS
    # All on the fast provider would take 12 rounds of 10 s; all on the slow one 6 of 30 s.
    assert makespan < 12 * FAST_SECONDS and makespan < 6 * SLOW_SECONDS
    for job in jobs:
        final = await bench.repo.get_job(job.id)
        assert final is not None and final.status is JobStatus.DONE
        assert final.route_reason == job.route_reason


def _peak(spans: list[tuple[float, float]]) -> int:
    """The most spans open at one moment."""
    points = sorted([(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans])
    running = peak = 0
    for _, step in points:
        running += step
        peak = max(peak, running)
    return peak


async def test_pins_and_capabilities_come_first(bench: Bench) -> None:
    await _learn(bench)
    pinned = await bench.engine.submit(edit("mine").model_copy(update={"provider": "slow"}))
    assert pinned.provider == "slow" and pinned.route_reason == "Slow: you chose it."
    assert render(pinned.route_reason_text(), "de") == "Slow: von dir gewählt."
    assert render(pinned.route_reason_text(), "ja") == "Slow: あなたが選択しました。"
    bench.fast.refuse = "Fast cannot do this."
    refused_by_fast = await bench.engine.submit(edit("only slow"))
    assert refused_by_fast.provider == "slow"
    assert refused_by_fast.route_reason is not None
    assert "the only allowed provider that can do this" in refused_by_fast.route_reason
    await bench.engine.stop()


async def test_the_fallback_on_an_outage_uses_the_same_choice(bench: Bench) -> None:
    await _learn(bench)
    bench.fast.script(
        "down", *[Plan(submit_error=UpstreamError("fast", "down", nothing_billed=True))] * 3
    )
    job = await bench.engine.submit(edit("down"))
    assert job.provider == "fast"
    await bench.engine.run_until_idle()
    await bench.engine.stop()
    final = await bench.repo.get_job(job.id)
    assert final is not None and final.status is JobStatus.DONE and final.provider == "slow"
    assert final.route_reason is not None
    assert final.route_reason.startswith("Fast is not answering; Slow: the only allowed")
    assert render(final.route_reason_text(), "de").startswith(
        "Fast antwortet nicht; Slow: der einzige erlaubte Dienst"
    )
    assert [e.kind for e in bench.events if e.job.id == job.id].count("fallback") == 1
