"""``/kontext prefs`` (a member's own defaults) and the server's creative controls under
``/kontext-admin``: ``style``, ``blocklist``, ``tier`` and ``creative``.

Every change goes through the creative service, which checks Manage
Server for the server's controls and validates everything before saving; a refusal reaches
the member through the one error handler, and nothing is saved.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import discord
from discord import app_commands

from bot.access import check_can_configure
from bot.creative.service import CreativeService
from bot.creative.styles import NO_STYLE
from bot.creative_models import MAX_BATCH, MAX_STYLE_NAME, MAX_STYLE_PROMPT
from bot.discord import creative_text
from bot.discord.client import KontextBot, bot_of
from bot.discord.interactions import answer, requester
from bot.discord.language import reply_language
from bot.discord.options import PROVIDER_CHOICES, RATIO_CHOICES, style_autocomplete
from bot.discord.translator import described
from bot.models import AspectRatio

StyleName = app_commands.Range[str, 1, MAX_STYLE_NAME]
CLEAR_CHOICES = [app_commands.Choice(name="everything", value="all")] + [
    app_commands.Choice(name=str(name), value=key) for key, name in creative_text.PREF_NAMES.items()
]


def _creative(interaction: discord.Interaction[Any]) -> CreativeService:
    return bot_of(interaction).edits.creative


async def _reply(
    interaction: discord.Interaction[Any], text: Callable[..., str], *args: object, **kwargs: object
) -> None:
    """Answer with ``text(*args, **kwargs)`` worded in the member's language."""
    await answer(interaction, text(*args, **kwargs, language=await reply_language(interaction)))


def _guild(interaction: discord.Interaction[Any]) -> int:
    if interaction.guild_id is None:
        raise app_commands.NoPrivateMessage()
    return interaction.guild_id


class PrefsGroup(app_commands.Group, name="prefs", description="Your own defaults here"):
    @app_commands.command(description="Show your preferences in this server")
    async def show(self, interaction: discord.Interaction[Any]) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        prefs = await _creative(interaction).get_prefs(_guild(interaction), interaction.user.id)
        await _reply(interaction, creative_text.prefs_text, prefs)

    @app_commands.command(name="set", description="Set your defaults (a command's option wins)")
    @described("kontext prefs set")
    @app_commands.choices(aspect_ratio=RATIO_CHOICES, provider=PROVIDER_CHOICES)
    @app_commands.autocomplete(style=style_autocomplete)
    async def set_(
        self,
        interaction: discord.Interaction[Any],
        aspect_ratio: app_commands.Choice[str] | None = None,
        count: app_commands.Range[int, 1, MAX_BATCH] | None = None,
        style: StyleName | None = None,
        provider: app_commands.Choice[str] | None = None,
        guidance: app_commands.Range[float, 0, 20] | None = None,
        safety_tolerance: app_commands.Range[int, 1, 6] | None = None,
        ping: bool | None = None,
    ) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        given: dict[str, object] = {
            "aspect_ratio": AspectRatio(aspect_ratio.value) if aspect_ratio else None,
            "count": count,
            "style": style,
            "provider": provider.value if provider else None,
            "guidance": guidance,
            "safety_tolerance": safety_tolerance,
            "ping_when_done": ping,
        }
        changes = {k: v for k, v in given.items() if v is not None}
        who = requester(interaction)
        creative = _creative(interaction)
        if not changes:
            prefs = await creative.get_prefs(who.guild_id, who.user_id)
            await _reply(interaction, creative_text.prefs_text, prefs)
            return
        prefs = await creative.set_prefs(
            _guild(interaction), who.user_id, changes, role_ids=who.role_ids
        )
        await _reply(interaction, creative_text.prefs_text, prefs, changed=True)

    @app_commands.command(description="Forget one of your preferences, or all of them")
    @described("kontext prefs clear")
    @app_commands.choices(which=CLEAR_CHOICES)
    async def clear(
        self, interaction: discord.Interaction[Any], which: app_commands.Choice[str]
    ) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        who = requester(interaction)
        names = list(creative_text.PREF_NAMES) if which.value == "all" else [which.value]
        prefs = await _creative(interaction).set_prefs(
            _guild(interaction), who.user_id, {}, clear=names, role_ids=who.role_ids
        )
        await _reply(interaction, creative_text.prefs_text, prefs, changed=True)


class StyleGroup(app_commands.Group, name="style", description="This server's styles"):
    @app_commands.command(description="Add a style (Manage Server)")
    @described("kontext-admin style add")
    async def add(
        self,
        interaction: discord.Interaction[Any],
        name: StyleName,
        prompt: app_commands.Range[str, 1, MAX_STYLE_PROMPT],
    ) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        who = requester(interaction)
        style = await _creative(interaction).add_style(
            _guild(interaction), name, prompt, by_user_id=who.user_id, manage_guild=who.manage_guild
        )
        await _reply(interaction, creative_text.style_added_text, style.name)

    @app_commands.command(description="Remove one of this server's styles (Manage Server)")
    @described("kontext-admin style remove")
    @app_commands.autocomplete(name=style_autocomplete)
    async def remove(self, interaction: discord.Interaction[Any], name: StyleName) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        who = requester(interaction)
        await _creative(interaction).remove_style(
            _guild(interaction), name, manage_guild=who.manage_guild
        )
        await _reply(interaction, creative_text.style_removed_text, name)

    @app_commands.command(name="list", description="This server's styles and the built-in ones")
    async def list_(self, interaction: discord.Interaction[Any]) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        styles = await _creative(interaction).list_styles(_guild(interaction))
        await _reply(interaction, creative_text.styles_text, styles)


class BlocklistGroup(
    app_commands.Group, name="blocklist", description="Words and patterns refused in prompts"
):
    @app_commands.command(description="Block a word, a phrase or a pattern (Manage Server)")
    @described("kontext-admin blocklist add")
    async def add(
        self,
        interaction: discord.Interaction[Any],
        text: app_commands.Range[str, 1, 200],
        pattern: bool = False,
    ) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        who = requester(interaction)
        rule = await _creative(interaction).add_block_rule(
            _guild(interaction), text, regex=pattern, manage_guild=who.manage_guild
        )
        await _reply(interaction, creative_text.block_added_text, rule)

    @app_commands.command(description="Unblock a word, phrase or pattern (Manage Server)")
    @described("kontext-admin blocklist remove")
    async def remove(
        self, interaction: discord.Interaction[Any], text: app_commands.Range[str, 1, 200]
    ) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        who = requester(interaction)
        removed = await _creative(interaction).remove_block_rule(
            _guild(interaction), text, manage_guild=who.manage_guild
        )
        await _reply(interaction, creative_text.block_removed_text, text, removed)

    @app_commands.command(name="list", description="What is blocked (Manage Server)")
    async def list_(self, interaction: discord.Interaction[Any]) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        check_can_configure(manage_guild=requester(interaction).manage_guild)
        settings = await _creative(interaction).get_settings(_guild(interaction))
        await _reply(interaction, creative_text.blocklist_text, settings.blocklist)


class TierGroup(app_commands.Group, name="tier", description="More generous limits for a role"):
    @app_commands.command(name="set", description="Give a role its own limits (Manage Server)")
    @described("kontext-admin tier set")
    async def set_(
        self,
        interaction: discord.Interaction[Any],
        role: discord.Role,
        daily_quota: app_commands.Range[int, 0, 10_000] | None = None,
        active_jobs: app_commands.Range[int, 1, 100] | None = None,
    ) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        who = requester(interaction)
        tier = await _creative(interaction).set_tier(
            _guild(interaction),
            role.id,
            daily_quota=daily_quota,
            max_user_active=active_jobs,
            manage_guild=who.manage_guild,
        )
        await _reply(interaction, creative_text.tier_set_text, tier)

    @app_commands.command(description="Give a role the server's limits again (Manage Server)")
    @described("kontext-admin tier remove")
    async def remove(self, interaction: discord.Interaction[Any], role: discord.Role) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        who = requester(interaction)
        removed = await _creative(interaction).remove_tier(
            _guild(interaction), role.id, manage_guild=who.manage_guild
        )
        await _reply(interaction, creative_text.tier_removed_text, role.id, removed)

    @app_commands.command(name="list", description="The role tiers")
    async def list_(self, interaction: discord.Interaction[Any]) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        settings = await _creative(interaction).get_settings(_guild(interaction))
        await _reply(interaction, creative_text.tiers_text, settings.tiers)


@app_commands.command(
    name="creative", description="View or change batches, styles and knobs (Manage Server)"
)
@described("kontext-admin creative")
@app_commands.autocomplete(default_style=style_autocomplete)
async def creative_settings(
    interaction: discord.Interaction[Any],
    default_count: app_commands.Range[int, 1, MAX_BATCH] | None = None,
    max_count: app_commands.Range[int, 1, MAX_BATCH] | None = None,
    default_style: StyleName | None = None,
    default_guidance: app_commands.Range[float, 0, 20] | None = None,
    max_safety_tolerance: app_commands.Range[int, 1, 6] | None = None,
    members_choose_provider: bool | None = None,
    ping_when_done: bool | None = None,
) -> None:
    await interaction.response.defer(ephemeral=True, thinking=True)
    who = requester(interaction)
    creative = _creative(interaction)
    given: dict[str, object] = {
        "default_count": default_count,
        "max_count": max_count,
        "max_safety_tolerance": max_safety_tolerance,
        "members_choose_provider": members_choose_provider,
        "ping_when_done": ping_when_done,
    }
    changes: dict[str, object] = {k: v for k, v in given.items() if v is not None}
    if default_style is not None:
        cleared = default_style.strip().lower() in NO_STYLE
        changes["default_style"] = None if cleared else default_style
    if default_guidance is not None:
        changes["default_guidance"] = default_guidance or None
    if not changes:
        check_can_configure(manage_guild=who.manage_guild)
        settings = await creative.get_settings(_guild(interaction))
        await _reply(interaction, creative_text.creative_settings_text, settings)
        return
    settings = await creative.update_settings(
        _guild(interaction), changes, manage_guild=who.manage_guild
    )
    await _reply(interaction, creative_text.creative_settings_text, settings, changed=True)


def _groups() -> tuple[app_commands.Group, ...]:
    return (StyleGroup(), BlocklistGroup(), TierGroup())


async def setup(bot: KontextBot) -> None:
    bot.kontext_group.add_command(PrefsGroup())
    bot.admin_group.add_command(creative_settings)
    for group in _groups():
        bot.admin_group.add_command(group)


async def teardown(bot: KontextBot) -> None:
    bot.kontext_group.remove_command("prefs")
    for name in ("creative", "style", "blocklist", "tier"):
        bot.admin_group.remove_command(name)
