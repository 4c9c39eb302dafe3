"""Settings for running several processes: shards, provider account limits; the IDENTIFY pacer."""

from __future__ import annotations

import asyncio

import pytest
from pydantic import ValidationError

from bench.fakeprovider import capabilities
from bot.clock import ManualClock
from bot.config import Settings, parse_shard_ids
from bot.jobs import EngineConfig
from bot.shards import IdentifyPacer, shard_of


def _settings(**values: object) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "ids"),
    [("0-3", (0, 1, 2, 3)), ("0,2", (0, 2)), ("4, 0-1 ,9", (0, 1, 4, 9)), ("3-3", (3,))],
)
def test_shard_ids_take_ranges_and_lists(text: str, ids: tuple[int, ...]) -> None:
    assert parse_shard_ids(text) == ids
    assert _settings(shard_count=16, shard_ids=text).shard_ids == ids


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("a", "not a list of shard ids"),
        ("-1", "not a list of shard ids"),
        ("1-", "not a list of shard ids"),
        ("0,,2", "not a list of shard ids"),
        ("3-1", "runs backwards"),
    ],
)
def test_bad_shard_ids_are_refused_clearly(text: str, says: str) -> None:
    with pytest.raises(ValidationError, match=says):
        _settings(shard_count=8, shard_ids=text)


def test_shard_ids_must_fit_the_shard_count(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValidationError, match="names shard 4, but KONTEXT_SHARD_COUNT=4"):
        _settings(shard_count=4, shard_ids="2-4")
    with pytest.raises(ValidationError, match="needs KONTEXT_SHARD_COUNT"):
        _settings(shard_ids="0")
    with pytest.raises(ValidationError):
        _settings(shard_count=0)
    # From the environment, as a deployment sets them.
    monkeypatch.setenv("KONTEXT_SHARD_COUNT", "4")
    monkeypatch.setenv("KONTEXT_SHARD_IDS", "0-1")
    settings = Settings(_env_file=None)
    assert (settings.shard_count, settings.shard_ids) == (4, (0, 1))
    monkeypatch.setenv("KONTEXT_SHARD_IDS", "")
    assert Settings(_env_file=None).shard_ids is None  # all of them


def test_shards_default_to_discord_recommendation_and_all_ids() -> None:
    settings = _settings()
    assert settings.shard_count is None and settings.shard_ids is None


def test_provider_account_limits_come_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AIMLAPI_CONCURRENCY", "2")
    monkeypatch.setenv("WAVESPEED_RATE_PER_MINUTE", "6")
    settings = Settings(_env_file=None)
    assert settings.provider_limits() == {"aimlapi": (2, None), "wavespeed": (None, 6.0)}
    config = EngineConfig.from_settings(settings)
    aiml = config.account(capabilities("aimlapi", concurrency=5))
    assert (aiml.concurrency, aiml.rate_per_minute) == (2, None)
    # Unset values keep the provider's documented entry tier.
    wave = config.account(capabilities("wavespeed", concurrency=3, rate_per_minute=2.0))
    assert (wave.concurrency, wave.rate_per_minute) == (3, 6.0)
    modelslab = config.account(capabilities("modelslab", concurrency=5))
    assert (modelslab.concurrency, modelslab.rate_per_minute) == (5, None)
    with pytest.raises(ValidationError):
        _settings(aimlapi_concurrency=0)


async def test_the_pacer_waits_only_within_a_bucket() -> None:
    clock = ManualClock()
    pacer = IdentifyPacer(2, window=5.0, clock=clock)
    await pacer.wait(0)
    await pacer.wait(1)  # another bucket: at once
    second = asyncio.create_task(pacer.wait(2))  # bucket 0 again: five seconds later
    for _ in range(5):  # let it run up to its sleep
        await asyncio.sleep(0)
    assert clock.sleepers == 1 and not second.done()
    clock.advance(5.0)
    await second


def test_a_guild_shard_follows_discord_formula() -> None:
    guild_id = 81384788765712384
    assert shard_of(guild_id, 1) == 0
    assert shard_of(guild_id, 16) == (guild_id >> 22) % 16
