"""REST routes, the CDN, rate limits and the Message Content intent, driven by discord.py."""

from __future__ import annotations

import io

import aiohttp
import discord
import pytest

from .actors import png_file
from .conftest import StartBot
from .models import Intent
from .server import FakeDiscord
from .testbot import FakeTestBot


def _text_channel(bot: FakeTestBot, fake: FakeDiscord, name: str) -> discord.TextChannel:
    channel = bot.get_channel(fake.channel(name).id)
    assert isinstance(channel, discord.TextChannel)
    return channel


async def test_json_content_type_is_exact_and_unknown_routes_fail(
    fake_discord: FakeDiscord,
) -> None:
    headers = {"Authorization": f"Bot {fake_discord.token}"}
    async with aiohttp.ClientSession(headers=headers) as session:
        async with session.get(fake_discord.api_base + "/users/@me") as response:
            assert response.status == 200
            assert response.headers["Content-Type"] == "application/json"
        async with session.get(fake_discord.api_base + "/guilds/1/audit-logs") as response:
            assert response.status == 404
        channel_id = fake_discord.channel("general").id
        messages = f"{fake_discord.api_base}/channels/{channel_id}/messages"
        post = session.post(messages, data=b"{nope", headers={"Content-Type": "application/json"})
        async with post as response:
            assert response.status == 400
            assert (await response.json())["code"] == 50109
    url = fake_discord.api_base + "/users/@me"
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        assert response.status == 401
    assert [v.code for v in fake_discord.pop_violations()] == [0, 50109, 40001]


async def test_messages_files_edits_reactions_typing_and_deletes(
    fake_discord: FakeDiscord, bot: FakeTestBot
) -> None:
    channel = _text_channel(bot, fake_discord, "general")
    async with channel.typing():
        sent = await channel.send("hello", file=discord.File(io.BytesIO(b"png!"), "a.png"))
    assert fake_discord.typing
    stored = fake_discord.messages[sent.id]
    assert stored.content == "hello" and stored.attachments[0]["filename"] == "a.png"
    fetched = await channel.fetch_message(sent.id)
    assert await fetched.attachments[0].read() == b"png!"
    edited = await fetched.edit(content="hello again", attachments=[])
    assert edited.content == "hello again" and not fake_discord.messages[sent.id].attachments
    await edited.add_reaction("👍")
    assert fake_discord.reactions[sent.id]["👍"] == {fake_discord.bot_user.id}
    assert (await channel.fetch_message(sent.id)).reactions[0].me
    fetched_channel = await bot.fetch_channel(channel.id)
    assert fetched_channel.id == channel.id
    history = [m.id async for m in channel.history(limit=5)]
    assert history == [sent.id]
    await edited.delete()
    assert fake_discord.messages[sent.id].deleted
    with pytest.raises(discord.NotFound):
        await channel.fetch_message(sent.id)
    fake_discord.allow_violations(10008)


async def test_threads_from_a_message_and_standalone(
    fake_discord: FakeDiscord, bot: FakeTestBot
) -> None:
    channel = _text_channel(bot, fake_discord, "images")
    starter = await channel.send("result")
    thread = await starter.create_thread(name="from message")
    assert thread.id == starter.id
    await thread.send("inside")
    assert [m.content for m in fake_discord.messages_in(thread.id)] == ["inside"]
    private = await channel.create_thread(name="private one")
    public = await channel.create_thread(name="public one", type=discord.ChannelType.public_thread)
    kinds = {t.name: t.type for t in fake_discord.threads_of(fake_discord.channel("images"))}
    assert kinds == {"from message": 11, "private one": 12, "public one": 11}
    await fake_discord.wait_for(lambda: bot.get_channel(public.id) and bot.get_channel(private.id))
    with pytest.raises(discord.HTTPException):
        await starter.create_thread(name="again")
    assert [v.code for v in fake_discord.pop_violations()] == [160004]


async def test_cdn_urls_expire_and_refetching_signs_them_again(
    fake_discord: FakeDiscord, bot: FakeTestBot
) -> None:
    alice = fake_discord.member("alice")
    posted = await alice.send("images", "look", files=[png_file()])
    channel = _text_channel(bot, fake_discord, "images")
    message = await channel.fetch_message(posted.id)
    url = message.attachments[0].url
    assert "ex=" in url and "is=" in url and "hm=" in url
    assert await message.attachments[0].read() == png_file().data
    async with aiohttp.ClientSession() as session:
        tampered = url.replace("hm=", "hm=0")
        async with session.get(tampered) as response:
            assert response.status == 403
        fake_discord.clock.advance(24 * 3600 + 1)
        async with session.get(url) as response:
            assert response.status == 404
    with pytest.raises(discord.NotFound):
        await message.attachments[0].read()
    fresh = await channel.fetch_message(posted.id)
    assert fresh.attachments[0].url != url
    assert await fresh.attachments[0].read() == png_file().data


@pytest.mark.parametrize("is_global", [False, True])
async def test_rate_limits_are_retried_by_discord_py(
    fake_discord: FakeDiscord, bot: FakeTestBot, is_global: bool
) -> None:
    channel = _text_channel(bot, fake_discord, "general")
    template = "/channels/{channel_id}/messages"
    fake_discord.rate_limit("POST", template, retry_after=0.05, is_global=is_global)
    await channel.send("after a 429")
    attempts = fake_discord.requests_to("POST", template)
    assert [r.status for r in attempts] == [429, 200]
    assert len(fake_discord.rate_limited) == 1
    assert [m.content for m in fake_discord.bot_messages("general")] == ["after a 429"]


async def test_enforced_nonce_deduplicates(fake_discord: FakeDiscord, bot: FakeTestBot) -> None:
    channel = _text_channel(bot, fake_discord, "general")
    first = await channel.send("once", nonce="job-42")
    await bot.http.send_message(channel.id, params=_nonce_params("once", "job-42"))
    assert [m.id for m in fake_discord.bot_messages("general")] == [first.id]


def _nonce_params(content: str, nonce: str) -> discord.http.MultipartParameters:
    params = discord.http.handle_message_parameters(content=content, nonce=nonce)
    assert params.payload is not None
    params.payload["enforce_nonce"] = True
    return params


async def test_message_content_intent_rules(fake_discord: FakeDiscord, bot: FakeTestBot) -> None:
    alice = fake_discord.member("alice")
    mine = await _text_channel(bot, fake_discord, "general").send("bot says hi")
    await alice.send("general", "plain", files=[png_file()])
    await alice.send("general", f"{bot.user.mention} mentioned")  # type: ignore[union-attr]
    stored_mine = fake_discord.messages[mine.id]
    await alice.send(content="reply with ping", reply_to=stored_mine)
    await alice.send(content="reply without ping", reply_to=stored_mine, mention_author=False)
    await alice.send_dm("in a dm")
    await fake_discord.wait_for(lambda: len(bot.seen) == 6)
    seen = [(m.content, len(m.attachments)) for m in bot.seen]
    assert seen == [
        ("bot says hi", 0),
        ("", 0),
        (f"{bot.user.mention} mentioned", 0),  # type: ignore[union-attr]
        ("reply with ping", 0),
        ("", 0),
        ("in a dm", 0),
    ]
    reply = bot.seen[3]
    assert reply.reference is not None and reply.reference.message_id == mine.id
    assert isinstance(reply.reference.resolved, discord.Message)
    assert bot.user in reply.mentions


@pytest.mark.discord_fake(granted_intents=Intent.MESSAGE_CONTENT)
async def test_granted_message_content_shows_everything(
    fake_discord: FakeDiscord, start_bot: StartBot
) -> None:
    intents = discord.Intents.default()
    intents.message_content = True
    bot = await start_bot(intents)
    await fake_discord.member("bob").send("general", "plain", files=[png_file()])
    await fake_discord.wait_for(lambda: bot.seen)
    assert bot.seen[0].content == "plain" and len(bot.seen[0].attachments) == 1


async def test_user_member_dm_and_gateway_lookups(
    fake_discord: FakeDiscord, bot: FakeTestBot
) -> None:
    alice = fake_discord.user("alice")
    user = await bot.fetch_user(alice.id)
    assert user.name == "alice"
    member = await bot.guilds[0].fetch_member(fake_discord.user("bob").id)
    assert member.name == "bob"
    dm = await user.create_dm()
    await dm.send("your image is ready")
    dm_channel = fake_discord.dm_channel(alice)
    assert [m.content for m in fake_discord.bot_messages(dm_channel)] == ["your image is ready"]
    shards, url, _ = await bot.http.get_bot_gateway()
    assert (shards, url) == (1, fake_discord.gateway_url)
