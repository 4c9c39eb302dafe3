"""The bot's own gateway shards: logged with their latency, reported to ``/healthz``."""

from __future__ import annotations

import logging

import pytest

from .conftest import Harness


async def test_each_shard_is_logged_and_reported_to_health(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    harness.fake.max_concurrency = 2  # both shards IDENTIFY at once
    with caplog.at_level(logging.INFO, logger="cogs.shards"):
        app = await harness.start(shard_count=2)
        await harness.fake.wait_for(
            lambda: sum("ready (latency" in r.getMessage() for r in caplog.records) == 2,
            what="both shards ready",
        )
    assert sorted(app.bot.shards) == [0, 1]
    healthy, body = await app.ops.health.report()
    assert healthy, body
    assert body["gateway"] == {"shards": {"0": True, "1": True}}
    await app.bot.get_shard(1).disconnect()  # type: ignore[union-attr]
    healthy, body = await app.ops.health.report()
    assert not healthy and body["down"] == ["gateway"]
    assert body["gateway"] == {"shards": {"0": True, "1": False}}
