"""``/kontext-admin modlog``: the channel where finished, failed and blocklist-refused
requests are logged for moderators (no channel: the log is off). The posting itself is the
delivery's :class:`bot.discord.modlog.ModLog`."""

from __future__ import annotations

from typing import Any

import discord
from discord import app_commands

from bot.discord import community_text
from bot.discord.client import KontextBot, bot_of
from bot.discord.interactions import answer, requester
from bot.discord.language import reply_language
from bot.discord.translator import described

#: What the bot needs in the log channel, as Discord names it.
NEEDED: tuple[tuple[str, str], ...] = (
    ("view_channel", "View Channel"),
    ("send_messages", "Send Messages"),
    ("embed_links", "Embed Links"),
)


def _missing(channel: discord.TextChannel) -> list[str]:
    """The permissions the bot lacks in ``channel`` (none known: an empty list)."""
    me = channel.guild.me
    if me is None:
        return []
    perms = channel.permissions_for(me)
    return [name for attr, name in NEEDED if not getattr(perms, attr)]


@app_commands.command(
    name="modlog", description="Log every finished, failed or blocked request (Manage Server)"
)
@described("kontext-admin modlog")
async def modlog(
    interaction: discord.Interaction[Any], channel: discord.TextChannel | None = None
) -> None:
    await interaction.response.defer(ephemeral=True, thinking=True)
    await bot_of(interaction).edits.set_modlog(
        requester(interaction), channel.id if channel else None
    )
    missing = _missing(channel) if channel is not None else []
    language = await reply_language(interaction)
    text = community_text.modlog_set_text(channel.id if channel else None, missing, language)
    await answer(interaction, text)


async def setup(bot: KontextBot) -> None:
    bot.admin_group.add_command(modlog)


async def teardown(bot: KontextBot) -> None:
    bot.admin_group.remove_command(modlog.name)
