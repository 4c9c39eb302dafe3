"""Reading Discord input into the edit service's plain values, and queueing a job with its
status message, shared by every cog."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

import discord
from discord import app_commands
from discord.ext import commands

from bot.edits import EditService, ImageInput, Requester
from bot.errors import KontextError
from bot.i18n import t
from bot.models import Job

from . import render
from .delivery import DiscordDelivery, Placement
from .language import reply_language
from .mentions import NO_MENTIONS

T = TypeVar("T")

_IMAGE_EXTENSIONS = frozenset({"png", "jpg", "jpeg", "webp", "gif"})


class AttachmentUnreadable(KontextError):
    """Discord would not give us an attachment's bytes."""

    code = "attachment_unreadable"


def requester(interaction: discord.Interaction[Any]) -> Requester:
    """Who pressed or typed, where, and with which powers (from the interaction alone)."""
    channel = interaction.channel
    parent_id: int | None = None
    thread_id: int | None = None
    if isinstance(channel, discord.Thread):
        parent_id = channel.parent_id
        thread_id = channel.id
    user = interaction.user
    roles = tuple(r.id for r in user.roles) if isinstance(user, discord.Member) else ()
    perms = interaction.permissions
    return Requester(
        guild_id=interaction.guild_id or 0,
        channel_id=interaction.channel_id or 0,
        user_id=user.id,
        parent_channel_id=parent_id,
        thread_id=thread_id,
        role_ids=roles,
        moderator=bool(interaction.guild_id) and perms.manage_messages,
        manage_guild=bool(interaction.guild_id) and perms.manage_guild,
        upload_limit=interaction.filesize_limit or None,  # the server's, by its boost level
        guild_locale=str(interaction.guild_locale) if interaction.guild_locale else None,
    )


def message_requester(message: discord.Message) -> Requester:
    """Who posted ``message``, where, and with which powers."""
    channel = message.channel
    author = message.author
    moderator = manage_guild = False
    roles: tuple[int, ...] = ()
    if isinstance(author, discord.Member) and isinstance(
        channel, discord.TextChannel | discord.Thread
    ):
        perms = channel.permissions_for(author)
        moderator, manage_guild = perms.manage_messages, perms.manage_guild
        roles = tuple(r.id for r in author.roles)
    in_thread = isinstance(channel, discord.Thread)
    return Requester(
        guild_id=message.guild.id if message.guild else 0,
        channel_id=channel.id,
        user_id=author.id,
        parent_channel_id=channel.parent_id if isinstance(channel, discord.Thread) else None,
        thread_id=channel.id if in_thread else None,
        role_ids=roles,
        moderator=moderator,
        manage_guild=manage_guild,
        upload_limit=message.guild.filesize_limit if message.guild else None,
        guild_locale=str(message.guild.preferred_locale) if message.guild else None,
    )


def strip_mention(content: str, bot_id: int) -> str:
    """``content`` without the bot's own mentions (``<@id>`` and ``<@!id>``), tidied."""
    text = re.sub(rf"<@!?{bot_id}>", " ", content)
    return re.sub(r"[ \t]{2,}", " ", text).strip()


def looks_like_image(attachment: discord.Attachment) -> bool:
    """Declared an image (content type, else file name); the service decodes it to be sure."""
    kind = (attachment.content_type or "").split(";")[0]
    if kind:
        return kind.startswith("image/")
    return attachment.filename.lower().rsplit(".", 1)[-1] in _IMAGE_EXTENSIONS


def is_result_image(attachment: discord.Attachment) -> bool:
    """An image attachment of one of our results (the extension counts even when the stored
    content type is generic: our results are only ever images)."""
    name = attachment.filename.lower()
    return looks_like_image(attachment) or name.endswith((".png", ".jpg", ".jpeg", ".webp"))


def image_input(attachment: discord.Attachment, message_id: int | None = None) -> ImageInput:
    """An attachment for the service, downloaded through the bot's own Discord session."""

    async def read() -> bytes:
        try:
            return await attachment.read()
        except discord.HTTPException as err:
            raise AttachmentUnreadable(
                t(
                    "discord.error.attachment_unreadable",
                    filename=attachment.filename,
                    status=err.status,
                )
            ) from err

    return ImageInput(
        url=attachment.url,
        filename=attachment.filename,
        size=attachment.size,
        read=read,
        message_id=message_id,
        attachment_id=attachment.id,
    )


async def answer(interaction: discord.Interaction[Any], text: str) -> None:
    """The private answer to a deferred interaction; it pings nobody."""
    await interaction.followup.send(text, ephemeral=True, allowed_mentions=NO_MENTIONS)


async def queue_and_show(
    delivery: DiscordDelivery,
    edits: EditService,
    submit: Callable[[], Awaitable[Job]],
    show: Callable[[Job], Awaitable[T]],
) -> T:
    """Queue a job (``submit``) and post its status message (``show``).

    Deliveries wait while this runs (the result must go where the status is). If the status
    message cannot be posted the job is withdrawn again, so nothing runs that nobody can
    follow.
    """
    async with delivery.preparing():
        job = await submit()
        try:
            return await show(job)
        except discord.HTTPException:
            await edits.withdraw(job)
            raise


async def start_job(
    interaction: discord.Interaction[Any],
    delivery: DiscordDelivery,
    edits: EditService,
    submit: Callable[[], Awaitable[Job]],
) -> Job:
    """Queue a job for a deferred interaction, open its status message and thread where the
    interaction happened, and tell the requester (privately) where to follow it."""

    async def show(job: Job) -> tuple[Job, Placement]:
        return job, await delivery.open_status(job, interaction)

    job, placement = await queue_and_show(delivery, edits, submit, show)
    language = await reply_language(interaction)
    text = render.queued_text(job.id, placement.where, placement.notes, language=language)
    await answer(interaction, text)
    return job


MenuCallback = Callable[[discord.Interaction[Any], discord.Message], Coroutine[Any, Any, None]]


class MenuCog(commands.Cog):
    """A cog that owns one message context menu (right-click → Apps → ``name``), added to
    the command tree while the cog is loaded. Its errors reach the tree's error handler."""

    def __init__(
        self, bot: commands.Bot | commands.AutoShardedBot, name: str, callback: MenuCallback
    ) -> None:
        self.tree = bot.tree
        self.menu = app_commands.ContextMenu(name=name, callback=callback)

    async def cog_load(self) -> None:
        self.tree.add_command(self.menu)

    async def cog_unload(self) -> None:
        self.tree.remove_command(self.menu.name, type=self.menu.type)
