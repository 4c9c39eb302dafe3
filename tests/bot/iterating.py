"""Helpers for the reply, remix and history end-to-end tests."""

from __future__ import annotations

import io
import re
from collections.abc import Sequence

from PIL import Image

from tests.bot.conftest import Harness
from tests.discord_fake import Actor, FileUpload, StoredMessage, png_file

STAR = "⭐"


async def reply(
    h: Harness,
    who: str,
    target: StoredMessage,
    text: str,
    *,
    files: Sequence[FileUpload] = (),
    ping: bool = True,
) -> StoredMessage:
    """``who`` replies to ``target`` (pinging its author unless ``ping`` is false)."""
    return await h.member(who).send(content=text, reply_to=target, files=files, mention_author=ping)


async def nth_result(h: Harness, channel_id: int, count: int) -> StoredMessage:
    """The ``count``-th result in a channel, once there are that many."""
    found = await h.fake.wait_for(
        lambda: len(h.results(channel_id)) >= count and h.results(channel_id)[count - 1],
        what=f"result {count} in channel {channel_id}",
    )
    assert isinstance(found, StoredMessage)
    return found


def replied_to(message: StoredMessage) -> int | None:
    reference = message.payload.get("message_reference")
    return int(reference["message_id"]) if reference else None


async def answer_to(h: Harness, message: StoredMessage) -> StoredMessage:
    """The bot's message that replies to ``message`` (a status message or a refusal)."""
    found = await h.fake.wait_for(
        lambda: next(
            (m for m in h.fake.bot_messages(message.channel_id) if replied_to(m) == message.id),
            None,
        ),
        what=f"the bot's answer to message {message.id}",
    )
    assert isinstance(found, StoredMessage)
    return found


def job_id_of(result: StoredMessage) -> int:
    return int(re.findall(r"kx:reroll:(\d+)", str(result.components))[0])


def labels(message: StoredMessage) -> list[str]:
    return [c.get("label", "") for row in message.components for c in row["components"]]


async def react(h: Harness, who: Actor, message: StoredMessage, emoji: str = STAR) -> None:
    """``who`` adds a reaction: stored, and sent as MESSAGE_REACTION_ADD like Discord does."""
    fake = h.fake
    fake.reactions.setdefault(message.id, {}).setdefault(emoji, set()).add(who.user.id)
    data = {
        "user_id": str(who.user.id),
        "channel_id": str(message.channel_id),
        "message_id": str(message.id),
        "guild_id": str(fake.guild.id),
        "emoji": {"id": None, "name": emoji},
        "burst": False,
        "type": 0,
    }
    await fake.gateway.dispatch("MESSAGE_REACTION_ADD", data)
    fake.notify()


def decode(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def png_files(count: int) -> list[FileUpload]:
    """``count`` small PNG uploads with distinct names."""
    return [png_file(f"extra-{n}.png") for n in range(count)]
