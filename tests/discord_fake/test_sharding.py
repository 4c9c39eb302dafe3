"""Sharding on the fake gateway, driven by discord.py's AutoShardedClient."""

from __future__ import annotations

import json

import discord
import pytest

from bot.shards import shard_of

from .gateway import CLOSE_SHARDING_REQUIRED, IDENTIFY_TOO_FAST, Session
from .server import FakeDiscord
from .testbot import ShardedTestClient


def _events(session: Session, name: str) -> list[dict[str, object]]:
    frames = (json.loads(text) for _, text in session.backlog)
    return [f["d"] for f in frames if f["t"] == name]


async def test_each_shard_carries_only_its_guilds(fake_discord: FakeDiscord) -> None:
    fake = fake_discord
    fake.identify_window = 0.2
    alice = fake.user("alice")
    zero = fake.add_guild("Zero", humans=(), members=[alice], shard=(0, 2))
    one = fake.add_guild("One", humans=("dave",), members=[alice], shard=(1, 2))
    client = ShardedTestClient(shard_count=2, identify_window=0.2)
    async with fake.running(client):
        sessions = fake.gateway.shard_sessions()
        assert {s.shard for s in sessions.values()} == {(0, 2), (1, 2)}
        for shard_id, session in sessions.items():
            (ready,) = _events(session, "READY")
            carried = {int(g["id"]) for g in ready["guilds"]}  # type: ignore[attr-defined]
            created = {int(g["id"]) for g in _events(session, "GUILD_CREATE")}  # type: ignore[arg-type]
            expected = {g for g in fake.guilds if shard_of(g, 2) == shard_id}
            assert carried == created == expected and expected
        assert {g.id for g in client.guilds} == set(fake.guilds)
        assert client.get_guild(zero.id).shard_id == 0  # type: ignore[union-attr]
        assert client.get_guild(one.id).shard_id == 1  # type: ignore[union-attr]
        # Alice is in both guilds; her message in guild One travels on shard 1 only.
        await fake.member("alice").send(fake.channel("general", one), "hello from one")
        message = await fake.wait_for(lambda: client.seen[-1] if client.seen else None)
        assert message.guild is not None and message.guild.id == one.id
        assert len(_events(sessions[1], "MESSAGE_CREATE")) == 1
        assert _events(sessions[0], "MESSAGE_CREATE") == []
        # Direct messages go to shard 0.
        await fake.member("alice").send_dm("psst")
        await fake.wait_for(lambda: len(client.seen) == 2)
        assert len(_events(sessions[0], "MESSAGE_CREATE")) == 1
        assert len(_events(sessions[1], "MESSAGE_CREATE")) == 1


async def test_gateway_bot_recommends_shards_and_gives_the_session_start_limit(
    fake_discord: FakeDiscord,
) -> None:
    fake = fake_discord
    fake.guilds_per_shard = 2
    fake.max_concurrency = 3
    fake.identify_window = 0.2
    for index in range(4):
        fake.add_guild(f"Guild {index}", humans=())
    client = ShardedTestClient(identify_window=0.2)  # no shard_count: Discord recommends
    async with fake.running(client):
        assert client.shard_count == 3  # five guilds, two per shard
        assert len(fake.gateway.shard_sessions()) == 3
        limits = await client.fetch_session_start_limits()
        assert limits.max_concurrency == 3
        assert limits.remaining == limits.total - 3
        assert len(client.guilds) == 5


async def test_an_unsharded_bot_in_too_many_guilds_is_closed_with_4011(
    fake_discord: FakeDiscord,
) -> None:
    fake = fake_discord
    fake.max_guilds_per_session = 2
    fake.identify_window = 0.2
    fake.add_guild("Two", humans=(), shard=(1, 2))
    fake.add_guild("Three", humans=(), shard=(1, 2))
    client = discord.Client(intents=discord.Intents.default(), guild_ready_timeout=0.05)
    with pytest.raises(discord.ConnectionClosed) as closed:
        async with fake.running(client):
            pass
    assert closed.value.code == CLOSE_SHARDING_REQUIRED
    assert fake.gateway.connections[-1].close_code == CLOSE_SHARDING_REQUIRED
    # A shard that carries more than the limit is refused too: shard 1 of 2 carries three.
    fake.add_guild("Four", humans=(), shard=(1, 2))
    sharded = ShardedTestClient(shard_count=2, identify_window=0.2)
    with pytest.raises(discord.ConnectionClosed) as closed:
        async with fake.running(sharded):
            pass
    assert closed.value.code == CLOSE_SHARDING_REQUIRED


async def test_identifies_faster_than_max_concurrency_allows_are_refused(
    fake_discord: FakeDiscord,
) -> None:
    fake = fake_discord
    fake.identify_window = 0.3
    fake.add_guild("Other shard", humans=(), shard=(1, 2))
    careless = ShardedTestClient(shard_count=2, identify_window=0.3, pace=False)
    async with fake.running(careless):
        violation = await fake.wait_for_violation(IDENTIFY_TOO_FAST)
        assert "shard 1" in violation.detail
        assert careless.attempts[1] == 2  # refused (op 9), then identified after the window
        assert len(careless.guilds) == 2
    fake.pop_violations()


async def test_paced_shards_identify_within_the_limit(fake_discord: FakeDiscord) -> None:
    fake = fake_discord
    fake.identify_window = 0.3
    for shard in range(3):
        fake.add_guild(f"Shard {shard}", humans=(), shard=(shard, 3))
    client = ShardedTestClient(shard_count=3, identify_window=0.3)
    async with fake.running(client):
        assert len(client.guilds) == 4
        assert client.attempts == {0: 1, 1: 1, 2: 1}
    assert not fake.violations  # every IDENTIFY was within max_concurrency
