"""``/kontext queue|cancel|usage|help`` and ``/kontext-admin settings``.

The ``/kontext`` and ``/kontext-admin`` groups belong to the client; this cog adds its
subcommands while it is loaded (other cogs add ``history``, ``forget-me``, ``remix`` and
``resume``).
"""

from __future__ import annotations

from typing import Any

import discord
from discord import app_commands

from bot.discord import community_text, render
from bot.discord.client import KontextBot, bot_of
from bot.discord.interactions import answer, requester
from bot.discord.language import reply_language
from bot.discord.mentions import NO_MENTIONS
from bot.discord.translator import described
from bot.i18n import render as word
from bot.i18n import t
from bot.models import AspectRatio, GuildSettings, IteratePolicy, NsfwPolicy

#: The choices of the server's language setting ("auto" follows Discord's locales).
LANGUAGE_CHOICES = [
    app_commands.Choice(name=name, value=value)
    for name, value in (("auto", "auto"), ("English", "en"), ("Deutsch", "de"), ("日本語", "ja"))
]


@app_commands.command(name="help", description="How to use Kontext")
async def help_(interaction: discord.Interaction[Any]) -> None:
    text = word(render.HELP_TEXT, await reply_language(interaction))
    await interaction.response.send_message(text, ephemeral=True, allowed_mentions=NO_MENTIONS)


@app_commands.command(description="View or change this server's Kontext settings (Manage Server)")
@described("kontext-admin settings")
@app_commands.choices(
    nsfw=[app_commands.Choice(name=p.value, value=p.value) for p in NsfwPolicy],
    iterate=[app_commands.Choice(name=p.value, value=p.value) for p in IteratePolicy],
    aspect_ratio=[app_commands.Choice(name=r.value, value=r.value) for r in AspectRatio],
    language=LANGUAGE_CHOICES,
)
async def settings(
    interaction: discord.Interaction[Any],
    provider: str | None = None,
    providers: str | None = None,
    nsfw: app_commands.Choice[str] | None = None,
    daily_quota: app_commands.Range[int, 0, 10_000] | None = None,
    per_user: app_commands.Range[int, 1, 100] | None = None,
    running: app_commands.Range[int, 1, 50] | None = None,
    queue_length: app_commands.Range[int, 1, 1000] | None = None,
    daily_credit_cap: app_commands.Range[float, 0, 1_000_000] | None = None,
    iterate: app_commands.Choice[str] | None = None,
    aspect_ratio: app_commands.Choice[str] | None = None,
    safety_tolerance: app_commands.Range[int, 1, 6] | None = None,
    allowed_channel: discord.TextChannel | None = None,
    clear_channels: bool = False,
    allowed_role: discord.Role | None = None,
    clear_roles: bool = False,
    language: app_commands.Choice[str] | None = None,
) -> None:
    await interaction.response.defer(ephemeral=True, thinking=True)
    bot = bot_of(interaction)
    who = requester(interaction)
    current = await bot.edits.guild_settings(who.guild_id)
    choices = {
        "nsfw_policy": nsfw,
        "iterate_policy": iterate,
        "default_aspect_ratio": aspect_ratio,
        "language": language,
    }
    values = {
        "provider": provider,
        "providers": providers,
        "daily_quota": daily_quota,
        "max_user_active": per_user,
        "max_guild_running": running,
        "max_guild_queue": queue_length,
        "daily_credit_cap": daily_credit_cap,
        "safety_tolerance": safety_tolerance,
    }
    changes: dict[str, Any] = {k: v for k, v in values.items() if v is not None}
    changes.update({k: c.value for k, c in choices.items() if c is not None})
    changes.update(
        _id_list_changes(current, "allowed_channel_ids", allowed_channel, clear=clear_channels)
    )
    changes.update(_id_list_changes(current, "allowed_role_ids", allowed_role, clear=clear_roles))
    updated = await bot.edits.update_settings(who, changes)
    lang = await reply_language(interaction)  # after the change: a new pin speaks at once
    prefix = word(t("discord.settings.saved"), lang) if changes else ""
    shown = render.settings_text(updated, bot.edits.default_provider, language=lang)
    modlog = community_text.modlog_setting(updated.modlog_channel_id, lang)
    await answer(interaction, f"{prefix}{shown}\n{modlog}")


def _id_list_changes(
    current: GuildSettings, field: str, added: discord.abc.Snowflake | None, *, clear: bool
) -> dict[str, tuple[int, ...]]:
    """An allow list cleared and/or extended by one id (only what the options asked)."""
    if added is None:
        return {field: ()} if clear else {}
    base: tuple[int, ...] = () if clear else getattr(current, field)
    return {field: tuple(dict.fromkeys((*base, added.id)))}


@settings.autocomplete("provider")
async def _provider_names(
    interaction: discord.Interaction[Any], current: str
) -> list[app_commands.Choice[str]]:
    return [
        app_commands.Choice(name=f"{caps.label} ({name})", value=name)
        for name, caps in sorted(bot_of(interaction).edits.capabilities.items())
        if current.lower() in name
    ][:25]


@app_commands.command(description="Your jobs and this server's queue")
async def queue(interaction: discord.Interaction[Any]) -> None:
    await interaction.response.defer(ephemeral=True, thinking=True)
    snapshot = await bot_of(interaction).edits.queue(requester(interaction))
    await answer(interaction, render.queue_text(snapshot, await reply_language(interaction)))


@app_commands.command(description="Cancel one of your jobs (moderators: any job)")
@described("kontext cancel")
async def cancel(interaction: discord.Interaction[Any], job: app_commands.Range[int, 1]) -> None:
    await interaction.response.defer(ephemeral=True, thinking=True)
    cancelled = await bot_of(interaction).edits.cancel(requester(interaction), job)
    await answer(
        interaction, render.cancelled_text(cancelled.id, await reply_language(interaction))
    )


@app_commands.command(description="How many edits and credits were used")
@described("kontext usage")
async def usage(
    interaction: discord.Interaction[Any],
    days: app_commands.Range[int, 1, 365] = 30,
    mine: bool = False,
) -> None:
    await interaction.response.defer(ephemeral=True, thinking=True)
    report = await bot_of(interaction).edits.usage(requester(interaction), days=days, only_me=mine)
    await answer(interaction, render.usage_text(report, await reply_language(interaction)))


COMMANDS: tuple[app_commands.Command[Any, ..., None], ...] = (help_, queue, cancel, usage)


async def setup(bot: KontextBot) -> None:
    for command in COMMANDS:
        bot.kontext_group.add_command(command)
    bot.admin_group.add_command(settings)


async def teardown(bot: KontextBot) -> None:
    bot.admin_group.remove_command(settings.name)
    for command in COMMANDS:
        bot.kontext_group.remove_command(command.name)
