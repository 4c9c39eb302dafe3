"""Fair turns between guilds and users, provider concurrency and rate, guild running caps."""

from __future__ import annotations

from bench.fakeprovider import FakeProvider, Plan, capabilities
from bot.jobs import EngineConfig, JobDelayed, JobEvent, ProviderLimits
from bot.models import GuildSettings, JobStatus
from bot.providers.errors import RateLimited

from .conftest import T0, Harness, edit


def _started(harness: Harness) -> list[tuple[str, float]]:
    return [(e.job.prompt, e.at - T0) for e in harness.events if e.kind == "started"]


async def _roomy(harness: Harness, guild: int, running: int = 4) -> None:
    await harness.repo.save_guild_settings(
        GuildSettings(
            guild_id=guild,
            max_user_active=50,
            max_guild_queue=500,
            max_guild_running=running,
            daily_quota=0,
        ),
        now=T0,
    )


async def test_guilds_take_turns_and_users_inside_a_guild(harness: Harness) -> None:
    one = FakeProvider(
        capabilities("one", asynchronous=True, concurrency=1, min_poll_interval=5.0),
        clock=harness.clock,
        default=Plan(sync=False, finish_after=5.0),
    )
    harness.providers["one"] = one
    await _roomy(harness, 1)
    engine = harness.engine(EngineConfig(default_provider="one"))
    for i in range(3):  # a busy guild: two members, three jobs each
        await engine.submit(edit(f"g1-u1-{i}", guild=1, user=1))
        await engine.submit(edit(f"g1-u2-{i}", guild=1, user=2))
    await engine.submit(edit("g2", guild=2, user=3))
    await engine.submit(edit("g3", guild=3, user=4))
    await engine.start()
    await engine.run_until_idle()

    order = [prompt for prompt, _ in _started(harness)]
    assert order == [
        "g1-u1-0",
        "g2",
        "g3",
        "g1-u2-0",
        "g1-u1-1",
        "g1-u2-1",
        "g1-u1-2",
        "g1-u2-2",
    ]
    # One slot: each job started when the previous one finished (5 s each).
    assert [at for _, at in _started(harness)] == [5.0 * i for i in range(8)]


async def test_concurrency_keeps_every_slot_busy_and_never_more(harness: Harness) -> None:
    three = FakeProvider(
        capabilities("three", asynchronous=True, concurrency=3, min_poll_interval=10.0),
        clock=harness.clock,
        default=Plan(sync=False, finish_after=10.0),
    )
    harness.providers["three"] = three
    for guild in range(1, 8):
        await _roomy(harness, guild)
    engine = harness.engine(EngineConfig(default_provider="three"))
    running: list[int] = []

    async def watch(event: JobEvent) -> None:
        if event.kind == "started":
            running.append(engine.running("three"))

    engine.events.add(watch)
    await engine.start()
    for guild in range(1, 8):
        await engine.submit(edit(f"job {guild}", guild=guild, user=guild))
    await engine.run_until_idle()

    assert max(running) == 3
    starts = [at for _, at in _started(harness)]
    assert starts == [0.0, 0.0, 0.0, 10.0, 10.0, 10.0, 20.0]


async def test_configured_concurrency_overrides_the_provider_default(harness: Harness) -> None:
    config = EngineConfig(
        default_provider="fake", providers={"fake": ProviderLimits(concurrency=7)}
    )
    engine = harness.engine(config)
    assert engine.concurrency("fake") == 7
    assert harness.engine().concurrency("fake") == 2


async def test_rate_limit_spaces_submissions_on_the_clock(harness: Harness) -> None:
    paced = FakeProvider(
        capabilities("paced", concurrency=5, rate_per_minute=2), clock=harness.clock
    )
    harness.providers["paced"] = paced
    engine = harness.engine(EngineConfig(default_provider="paced"))
    for i in range(4):
        await engine.submit(edit(f"job {i}", guild=10 + i, user=i))
    await engine.start()
    await engine.run_until_idle()
    # A burst of two, then one every 30 s.
    assert [at for _, at in _started(harness)] == [0.0, 0.0, 30.0, 60.0]


async def test_guild_running_cap_leaves_room_for_other_guilds(harness: Harness) -> None:
    wide = FakeProvider(
        capabilities("wide", asynchronous=True, concurrency=4, min_poll_interval=10.0),
        clock=harness.clock,
        default=Plan(sync=False, finish_after=10.0),
    )
    harness.providers["wide"] = wide
    await _roomy(harness, 1, running=1)
    engine = harness.engine(EngineConfig(default_provider="wide"))
    for i in range(3):
        await engine.submit(edit(f"busy {i}", guild=1, user=i))
    await engine.submit(edit("quiet", guild=2, user=9))
    await engine.start()
    await engine.run_until_idle()
    assert _started(harness) == [
        ("busy 0", 0.0),
        ("quiet", 0.0),
        ("busy 1", 10.0),
        ("busy 2", 20.0),
    ]


async def test_rate_limited_job_waits_in_the_queue_without_holding_a_slot(
    harness: Harness,
) -> None:
    one = FakeProvider(capabilities("one", concurrency=1), clock=harness.clock)
    harness.providers["one"] = one
    one.script("busy", Plan(submit_error=RateLimited("one", "slow down", retry_after=20.0)), Plan())
    engine = harness.engine(EngineConfig(default_provider="one"))
    first = await engine.submit(edit("busy", guild=1, user=1))
    await engine.start()
    await engine.run_until_idle()
    # While it waited the provider was left alone (the bucket was blocked for retry_after).
    delayed = harness.of(first.id, "delayed")
    assert len(delayed) == 1 and isinstance(delayed[0], JobDelayed)
    assert delayed[0].retry_at == T0 + 20.0
    assert harness.kinds(first.id) == ["queued", "started", "delayed", "started", "done"]
    assert [at for _, at in _started(harness)] == [0.0, 20.0]
    assert one.submits["busy"] == 2
    job = await harness.repo.get_job(first.id)
    assert job is not None and job.status is JobStatus.DONE and job.attempts == 0


async def test_rate_limited_job_does_not_block_other_jobs_once_the_wait_is_over(
    harness: Harness,
) -> None:
    two = FakeProvider(capabilities("two", concurrency=2), clock=harness.clock)
    harness.providers["two"] = two
    two.script("limited", Plan(submit_error=RateLimited("two", "later", retry_after=5.0)))
    engine = harness.engine(EngineConfig(default_provider="two"))
    await engine.submit(edit("limited", guild=1, user=1))
    await engine.submit(edit("other", guild=2, user=2))
    await engine.start()
    await engine.run_until_idle()
    assert sorted(_started(harness)) == [("limited", 0.0), ("limited", 5.0), ("other", 0.0)]
