"""Small helpers every cog shares: reading the requester off an interaction, and the
ephemeral acknowledgement of a queued job."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, cast

import discord

from bot.errors import KontextError
from bot.kontext_service import ImageInput, Requester
from bot.mentions import NO_MENTIONS
from bot.models import Job

if TYPE_CHECKING:
    from bot.client import KontextBot
    from bot.discord_delivery import Placement


def requester(interaction: discord.Interaction[Any]) -> Requester:
    """Who pressed or typed, where, and with which powers (from the interaction alone)."""
    channel = interaction.channel
    channel_id = interaction.channel_id or 0
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
        channel_id=channel_id,
        user_id=user.id,
        parent_channel_id=parent_id,
        thread_id=thread_id,
        role_ids=roles,
        moderator=bool(interaction.guild_id) and perms.manage_messages,
        manage_guild=bool(interaction.guild_id) and perms.manage_guild,
    )


class DownloadFailed(KontextError):
    code = "download_failed"


def image_input(attachment: discord.Attachment, message_id: int | None = None) -> ImageInput:
    """An attachment for the service, downloaded through the bot's own Discord session."""

    async def read() -> bytes:
        try:
            return await attachment.read()
        except discord.HTTPException as err:
            raise DownloadFailed(
                f"I could not download {attachment.filename} from Discord ({err.status}). "
                "Attach it again and retry."
            ) from err

    return ImageInput(
        url=attachment.url,
        filename=attachment.filename,
        size=attachment.size,
        read=read,
        message_id=message_id,
        attachment_id=attachment.id,
    )


async def start_job(
    interaction: discord.Interaction[Any], submit: Callable[[], Awaitable[Job]]
) -> Job:
    """Queue a job (``submit``), open its status message and thread, and tell the requester.

    Deliveries wait while this runs (the result must go to the thread). If the status message
    cannot be posted the job is withdrawn again, so nothing runs that nobody can follow.
    """
    bot = cast("KontextBot", interaction.client)
    async with bot.delivery.preparing():
        job = await submit()
        try:
            placement = await bot.delivery.open_status(job, interaction)
        except discord.HTTPException:
            await bot.kontext.withdraw(job)
            raise
    await acknowledge_job(interaction, job, placement)
    return job


async def acknowledge_job(
    interaction: discord.Interaction[Any], job: Job, placement: Placement
) -> None:
    """Answer the deferred interaction: what was queued and where to follow it."""
    lines = [f"Queued as job {job.id}. Follow it {placement.where}."]
    lines.extend(placement.notes)
    await interaction.followup.send("\n".join(lines), ephemeral=True, allowed_mentions=NO_MENTIONS)
