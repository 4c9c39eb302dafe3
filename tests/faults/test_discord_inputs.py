"""Bad Discord intake, as a table: forged, malformed and cross-server ids, hostile prompts,
unusable attachments and DMs. Every row gets a clear refusal, queues nothing and pings
nobody (the harness also checks every message the bot sent for its allowed_mentions)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import pytest

from tests.bot.conftest import Delivered, Harness
from tests.bot.conftest import harness as harness  # the real bot on the fake Discord
from tests.bot.conftest import provider as provider
from tests.bot.iterating import answer_to, png_files, reply
from tests.discord_fake import FileUpload, StoredMessage
from tests.discord_fake.plugin import discord_spec as discord_spec
from tests.discord_fake.plugin import fake_discord as fake_discord

UNKNOWN = "not one I know"
OTHER_SERVER = "belongs to another server"
GONE = "no longer exists"
EMPTY = "prompt is empty"
SERVERS_ONLY = "servers only"


@dataclass
class World:
    harness: Harness
    done: Delivered  # alice's result in the test guild

    @property
    def job(self) -> int:
        return self.done.job_id


Act = Callable[[World], Awaitable[StoredMessage]]


async def _response(handle_coro: Awaitable[object]) -> StoredMessage:
    handle = await handle_coro
    return await handle.response()  # type: ignore[attr-defined, no-any-return]


def click(custom_id: Callable[[World], str], *, who: str = "alice", lobby: bool = False) -> Act:
    async def act(w: World) -> StoredMessage:
        actor = w.harness.member(who)
        where = "lobby" if lobby else None
        target = await actor.send("lobby", "hi") if lobby else w.done.result
        return await _response(actor.forge_click(target, custom_id(w), in_channel=where))

    return act


def modal(
    custom_id: Callable[[World], str], prompt: str, *, who: str = "alice", where: str | None = None
) -> Act:
    async def act(w: World) -> StoredMessage:
        actor = w.harness.member(who)
        channel = (
            w.harness.fake.dm_channel(actor.user)
            if where == "dm"
            else w.harness.fake.channel(where or "general")
        )
        return await _response(
            actor.forge_modal(custom_id(w), {"prompt": prompt}, in_channel=channel)
        )

    return act


def command(name: str, *, who: str = "alice", where: str | None = None, **options: object) -> Act:
    async def act(w: World) -> StoredMessage:
        actor = w.harness.member(who)
        channel = (
            w.harness.fake.dm_channel(actor.user)
            if where == "dm"
            else w.harness.fake.channel(where or "general")
        )
        values = {k: v(w) if callable(v) else v for k, v in options.items()}
        return await _response(actor.run_command(name, in_channel=channel, **values))

    return act


def replying(text: str, *, files: int = 0, delete_first: bool = False) -> Act:
    async def act(w: World) -> StoredMessage:
        h = w.harness
        target = w.done.result
        if delete_first:
            await _response(h.member("alice").click(target, "Delete"))
            target = h.fake.messages[target.id]
        asked = await reply(h, "alice", target, text, files=png_files(files))
        return await answer_to(h, asked)

    return act


async def _foreign_reply(w: World) -> StoredMessage:
    """A reply in another server whose reference names alice's result (a modified client)."""
    h = w.harness
    fake = h.fake
    lobby = fake.channel("lobby")
    mallory = fake.user("mallory")
    message = fake.create_message(
        lobby,
        mallory,
        {"content": f"<@{fake.bot_user.id}> steal it", "embeds": []},
        attachments=[],
        reference=w.done.result,
        ping_reply=True,
    )
    await fake.dispatch_message("MESSAGE_CREATE", message)
    return await answer_to(h, message)


def _link(w: World) -> str:
    return (
        f"https://discord.com/channels/{w.harness.fake.guild.id}/{w.done.thread_id}/"
        f"{w.done.result.id}"
    )


TEXT_FILE = FileUpload("notes.txt", b"not an image at all", "text/plain")
HUGE = FileUpload("huge.png", b"\x89PNG" + bytes(26 * 2**20), "image/png")

#: (kind of bad input, what is sent, words the refusal must contain)
CASES: list[tuple[str, Act, str]] = [
    ("button naming a job that never existed", click(lambda w: "kx:reroll:987654"), GONE),
    ("button id past the 64-bit range", click(lambda w: "kx:info:9999999999999999999"), GONE),
    ("button id that is not a number", click(lambda w: "kx:reroll:abc"), UNKNOWN),
    ("custom_id of 120 characters", click(lambda w: "kx:reroll:" + "1" * 110), UNKNOWN),
    ("custom_id of an unknown action", click(lambda w: f"kx:explode:{w.job}"), UNKNOWN),
    ("custom_id of another bot", click(lambda w: "confirm:yes"), UNKNOWN),
    ("modal custom_id on a button", click(lambda w: f"kx:editm:{w.job}"), UNKNOWN),
    (
        "Reroll of another server's job",
        click(lambda w: f"kx:reroll:{w.job}", who="mallory", lobby=True),
        OTHER_SERVER,
    ),
    (
        "Delete of another server's result",
        click(lambda w: f"kx:delete:{w.job}", who="mallory", lobby=True),
        OTHER_SERVER,
    ),
    (
        "modal naming another server's output",
        modal(lambda w: f"kx:editm:{w.job}", "steal it", who="mallory", where="lobby"),
        OTHER_SERVER,
    ),
    (
        "Edit image modal naming another server's result message",
        modal(lambda w: f"kx:msgm:{w.done.result.id}", "steal it", who="mallory", where="lobby"),
        OTHER_SERVER,
    ),
    (
        "history link to another server's result",
        command("kontext history", who="mallory", where="lobby", message=_link),
        OTHER_SERVER,
    ),
    ("history link that is no link", command("kontext history", message="hello"), "message link"),
    ("reply to another server's result", _foreign_reply, OTHER_SERVER),
    ("reply to a deleted result", replying("make it red", delete_first=True), "has been deleted"),
    ("modal with a blank prompt", modal(lambda w: f"kx:editm:{w.job}", "   \n\t "), EMPTY),
    (
        "modal with a zero-width prompt",
        modal(lambda w: f"kx:editm:{w.job}", "\u200b\u200d\ufeff\u2060"),
        EMPTY,
    ),
    ("reply with only the bot's mention", replying(""), "has no words"),
    (
        "attachment that is not an image",
        command("edit", prompt="blue", image=TEXT_FILE),
        "Image 1 (notes.txt)",
    ),
    (
        "attachment over the size limit",
        command("edit", prompt="blue", image=HUGE),
        "the limit is 25 MiB",
    ),
    ("reply with too many images", replying("make it red", files=4), "at most 4 images"),
    (
        "modal submitted from a DM",
        modal(lambda w: f"kx:editm:{w.job}", "red", where="dm"),
        SERVERS_ONLY,
    ),
    ("/kontext queue in a DM", command("kontext queue", where="dm"), SERVERS_ONLY),
]


@pytest.fixture
async def world(harness: Harness) -> World:
    harness.fake.add_guild("Other Guild", channels=("lobby",), humans=("mallory",))
    await harness.start(dev_guild_id=None)
    return World(harness, await harness.edit_done("a red fox"))


async def _jobs(h: Harness) -> int:
    assert h.app is not None
    return len(await h.app.repo.list_jobs(limit=10_000))


@pytest.mark.parametrize(("kind", "act", "refusal"), CASES, ids=[c[0] for c in CASES])
async def test_bad_discord_input_is_refused_clearly(
    world: World, kind: str, act: Act, refusal: str
) -> None:
    h = world.harness
    before = await _jobs(h)
    submits = h.provider.submits
    answer = await act(world)
    assert refusal in answer.content, f"{kind}: {answer.content}"
    assert "error id" not in answer.content  # an expected refusal, not a crash
    assert not answer.payload.get("mentions") and not answer.payload.get("mention_everyone")
    assert await _jobs(h) == before, f"{kind}: a job was queued"
    assert h.provider.submits == submits
    posted = [m for m in h.fake.bot_messages("lobby") if m.id != answer.id]
    assert posted == [], f"{kind}: something was posted in the other server"


async def test_a_prompt_that_tries_to_ping_pings_nobody(world: World) -> None:
    h = world.harness
    bob = h.fake.user("bob")
    done = await h.edit_done(f"@everyone @here <@{bob.id}> <@&{h.fake.guild.id}> make it blue")
    for message in (done.status, done.result):
        assert "@everyone" not in message.content and f"<@{bob.id}>" not in message.content
        assert not message.payload.get("mention_everyone")
        assert [int(m["id"]) for m in message.payload.get("mentions", [])] in (
            [],
            [h.fake.user("alice").id],
        )
        assert not message.payload.get("mention_roles")
