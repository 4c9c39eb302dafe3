"""The fake gateway: connect, READY/GUILD_CREATE, compression, resume, intents."""

from __future__ import annotations

import json
import zlib

import aiohttp
import discord
import pytest

from .conftest import StartBot
from .gateway import GATEWAY_PATH, RESUME_PATH
from .models import Intent
from .server import FakeDiscord
from .testbot import FakeTestBot


async def test_bot_connects_and_sees_the_guild(fake_discord: FakeDiscord, bot: FakeTestBot) -> None:
    assert bot.user is not None and bot.user.id == fake_discord.bot_user.id
    guild = bot.get_guild(fake_discord.guild.id)
    assert guild is not None
    assert guild.member_count == 4  # three humans and the bot
    assert guild.me is not None and guild.me.bot
    assert {c.name for c in guild.text_channels} == {"general", "images"}
    assert guild.default_role.id == guild.id
    conn = fake_discord.gateway.connections[0]
    assert conn.path == GATEWAY_PATH
    assert conn.compress and conn.query["v"] == "10" and conn.query["encoding"] == "json"
    identify = next(f for f in fake_discord.gateway.received if f["op"] == 2)
    assert identify["d"]["token"] == fake_discord.token


@pytest.mark.discord_fake(granted_intents=Intent.GUILD_MEMBERS)
async def test_members_intent_gives_the_full_member_list(start_bot: StartBot) -> None:
    intents = discord.Intents.default()
    intents.members = True
    bot = await start_bot(intents)
    guild = bot.guilds[0]
    assert guild.member_count == len(guild.members) == 4
    assert guild.chunked
    assert {m.name for m in guild.members if not m.bot} == {"alice", "bob", "carol"}


async def test_privileged_intent_not_granted_closes_4014(fake_discord: FakeDiscord) -> None:
    intents = discord.Intents.default()
    intents.message_content = True
    bot = FakeTestBot(intents=intents)
    with pytest.raises(discord.PrivilegedIntentsRequired):
        async with fake_discord.running(bot):
            pass
    assert fake_discord.gateway.connections[-1].close_code == 4014


@pytest.mark.discord_fake(granted_intents=Intent.MESSAGE_CONTENT)
async def test_granted_privileged_intent_connects(start_bot: StartBot) -> None:
    intents = discord.Intents.default()
    intents.message_content = True
    bot = await start_bot(intents)
    assert bot.is_ready()


async def _raw_frames(fake: FakeDiscord, query: str) -> list[dict[str, object]]:
    """Connect without discord.py, IDENTIFY, and read HELLO, ACK, READY, GUILD_CREATE."""
    frames: list[dict[str, object]] = []
    inflator = zlib.decompressobj()
    url = fake.gateway_url + query
    async with aiohttp.ClientSession() as session, session.ws_connect(url) as ws:

        async def read() -> dict[str, object]:
            msg = await ws.receive(timeout=5)
            if msg.type == aiohttp.WSMsgType.BINARY:
                assert msg.data.endswith(b"\x00\x00\xff\xff")
                frame = json.loads(inflator.decompress(msg.data))
            else:
                assert msg.type == aiohttp.WSMsgType.TEXT
                frame = json.loads(msg.data)
            assert isinstance(frame, dict)
            frames.append(frame)
            return frame

        await read()
        await ws.send_json({"op": 1, "d": None})
        await read()
        identify = {"token": fake.token, "intents": 1, "properties": {}}
        await ws.send_json({"op": 2, "d": identify})
        await read()
        await read()
    return frames


@pytest.mark.parametrize(
    "query", ["?v=10&encoding=json", "?v=10&encoding=json&compress=zlib-stream"]
)
async def test_plain_and_zlib_stream_frames(fake_discord: FakeDiscord, query: str) -> None:
    frames = await _raw_frames(fake_discord, query)
    assert [f["op"] for f in frames] == [10, 11, 0, 0]
    assert [f.get("t") for f in frames[2:]] == ["READY", "GUILD_CREATE"]
    ready = frames[2]["d"]
    assert isinstance(ready, dict)
    assert ready["resume_gateway_url"] == fake_discord.resume_gateway_url
    assert fake_discord.gateway.connections[0].compress == ("zlib" in query)


async def test_forced_reconnect_resumes_and_replays(
    fake_discord: FakeDiscord, bot: FakeTestBot
) -> None:
    session = fake_discord.gateway.session
    alice = fake_discord.member("alice")
    await fake_discord.gateway.force_reconnect()
    await alice.send("general", f"{bot.user.mention} during reconnect")  # type: ignore[union-attr]
    await fake_discord.wait_for(lambda: session.resumes == 1 and fake_discord.gateway.connected())
    assert fake_discord.gateway.connections[-1].path == RESUME_PATH
    assert len(fake_discord.gateway.sessions) == 1
    resume = next(f for f in fake_discord.gateway.received if f["op"] == 6)
    assert resume["d"]["session_id"] == session.id
    await fake_discord.wait_for(lambda: any("during reconnect" in m.content for m in bot.seen))


async def test_unknown_session_is_invalidated(fake_discord: FakeDiscord) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(fake_discord.resume_gateway_url + "?v=10&encoding=json") as ws,
    ):
        assert (await ws.receive_json(timeout=5))["op"] == 10
        resume = {"token": fake_discord.token, "session_id": "nope", "seq": 3}
        await ws.send_json({"op": 6, "d": resume})
        assert await ws.receive_json(timeout=5) == {"op": 9, "d": False}
