"""Refusals before anything is queued: limits (which, and when they free up), bad requests."""

from __future__ import annotations

import pytest

from bench.fakeprovider import Plan
from bot.durations import format_duration
from bot.jobs import LimitReached, UnknownProvider
from bot.jobs.limits import seconds_to_utc_midnight
from bot.models import GuildSettings
from bot.providers.errors import UnsupportedRequest
from storage.base import LimitKind

from .conftest import T0, Harness, edit


async def _jobs(harness: Harness) -> int:
    return len(await harness.repo.list_jobs(limit=1000))


async def test_user_active_limit_says_when_the_oldest_running_edit_finishes(
    harness: Harness,
) -> None:
    harness.provider.default = Plan(sync=False, finish_after=100.0)
    engine = harness.engine()
    await engine.start()
    for i in range(3):
        await engine.submit(edit(f"job {i}"))
    await harness.clock.sleep(0)  # let the dispatcher claim the first two
    while engine.running() < 2:
        await harness.clock.sleep(0)
    harness.clock.advance(10)

    with pytest.raises(LimitReached) as caught:
        await engine.submit(edit("one too many"))

    refusal = caught.value
    assert refusal.limit is LimitKind.USER_ACTIVE
    assert refusal.retry_in == 20.0  # started at T0, typical 30 s (no history), now T0+10
    assert "3 edits waiting or running" in refusal.user_message
    assert "in about 20 s, when your oldest running edit should finish" in refusal.user_message
    assert await _jobs(harness) == 3
    # Another member of the same guild is not affected.
    await engine.submit(edit("someone else", user=101))


async def test_user_active_limit_with_nothing_running_yet(harness: Harness) -> None:
    engine = harness.engine()  # not started: everything stays queued
    for i in range(3):
        await engine.submit(edit(f"job {i}"))
    with pytest.raises(LimitReached) as caught:
        await engine.submit(edit("fourth"))
    assert "when one of your queued edits has run" in caught.value.user_message
    assert caught.value.retry_in is None


async def test_guild_queue_limit_uses_the_guild_setting(harness: Harness) -> None:
    await harness.repo.save_guild_settings(
        GuildSettings(guild_id=1, max_guild_queue=2, max_guild_running=2), now=T0
    )
    engine = harness.engine()
    await engine.submit(edit("a", user=1))
    await engine.submit(edit("b", user=2))
    with pytest.raises(LimitReached) as caught:
        await engine.submit(edit("c", user=3))
    assert caught.value.limit is LimitKind.GUILD_QUEUE
    assert "queue is full (2 edits waiting)" in caught.value.user_message
    assert "in about 15 s, when the next queued edit starts" in caught.value.user_message
    assert await _jobs(harness) == 2
    await engine.submit(edit("other guild", guild=2, user=3))


async def test_daily_quota_resets_at_utc_midnight(harness: Harness) -> None:
    await harness.repo.save_guild_settings(GuildSettings(guild_id=1, daily_quota=2), now=T0)
    engine = harness.engine()
    await engine.start()
    await engine.submit(edit("one"))
    await engine.submit(edit("two"))
    await engine.run_until_idle()

    with pytest.raises(LimitReached) as caught:
        await engine.submit(edit("three"))
    assert caught.value.limit is LimitKind.DAILY_QUOTA
    assert caught.value.user_message == (
        "You have used your 2 edits for today in this server. "
        "The quota resets at 00:00 UTC, in 16 h."
    )
    assert await _jobs(harness) == 2

    harness.clock.set(T0 + 16 * 3600)  # the next UTC day
    await engine.submit(edit("three"))


async def test_zero_daily_quota_means_unlimited(harness: Harness) -> None:
    await harness.repo.save_guild_settings(
        GuildSettings(guild_id=1, daily_quota=0, max_user_active=100), now=T0
    )
    engine = harness.engine()
    for i in range(60):
        await engine.submit(edit(f"job {i}"))
    assert await _jobs(harness) == 60


async def test_provider_refusal_happens_before_queueing(harness: Harness) -> None:
    harness.provider.refuse = "Fake cannot do that; try /edit provider:other."
    engine = harness.engine()
    with pytest.raises(UnsupportedRequest) as caught:
        await engine.submit(edit("x"))
    assert "try /edit" in caught.value.user_message
    assert await _jobs(harness) == 0


async def test_unknown_provider_is_refused_with_the_choices(harness: Harness) -> None:
    engine = harness.engine()
    with pytest.raises(UnknownProvider) as caught:
        await engine.submit(edit("x", provider="nope"))
    assert "available: fake" in caught.value.user_message
    assert await _jobs(harness) == 0


async def test_guild_settings_choose_the_provider_and_fill_defaults(harness: Harness) -> None:
    from bench.fakeprovider import FakeProvider, capabilities

    other = FakeProvider(capabilities("other"), clock=harness.clock)
    harness.providers["other"] = other
    await harness.repo.save_guild_settings(GuildSettings(guild_id=1, provider="other"), now=T0)
    engine = harness.engine()
    job = await engine.submit(edit("x"))
    assert job.provider == "other"
    job2 = await engine.submit(edit("x", provider="fake"))
    assert job2.provider == "fake"


def test_duration_wording() -> None:
    assert format_duration(0.2, round_up=True) == "1 s"
    assert format_duration(40, round_up=True) == "40 s"
    assert format_duration(61, round_up=True) == "2 min"
    assert format_duration(5 * 3600 + 12 * 60, round_up=True) == "5 h 12 min"
    assert format_duration(7200, round_up=True) == "2 h"
    assert seconds_to_utc_midnight(T0) == 16 * 3600


def test_config_from_settings() -> None:
    from bot.config import Settings
    from bot.jobs import EngineConfig

    settings = Settings(
        _env_file=None,
        provider="wavespeed",
        fallback_provider="aimlapi",
        job_deadline_seconds=300,
        retention_days=0,
    )
    config = EngineConfig.from_settings(settings, lease_seconds=10)
    assert (config.default_provider, config.fallback_provider) == ("wavespeed", "aimlapi")
    assert config.deadline_seconds == 300 and config.lease_seconds == 10
    assert config.output_retention_seconds is None  # 0 days: keep outputs until deleted
