"""``/kontext settings|queue|cancel|usage|help``: the server's settings, the queue, usage."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands
from discord.ext import commands

from bot import render
from bot.mentions import NO_MENTIONS
from bot.models import AspectRatio, IteratePolicy, NsfwPolicy
from cogs.common import requester
from cogs.history import history_command
from cogs.remix import RemixGroup

if TYPE_CHECKING:
    from bot.client import KontextBot


class KontextGroup(app_commands.Group, name="kontext", description="Kontext settings and queue"):
    def __init__(self, bot: KontextBot) -> None:
        super().__init__()
        self.bot = bot
        # Issue 7: `/kontext remix ...` (cogs/remix.py) and `/kontext history` (cogs/history.py).
        self.add_command(RemixGroup(bot))
        self.add_command(history_command())

    async def interaction_check(self, interaction: discord.Interaction[Any], /) -> bool:
        """Everything but ``help`` needs a server (settings, queue and usage are per server)."""
        command = interaction.command
        if interaction.guild_id is None and (command is None or command.name != "help"):
            raise app_commands.NoPrivateMessage()
        return True

    @app_commands.command(name="help", description="How to use Kontext")
    async def help_(self, interaction: discord.Interaction[Any]) -> None:
        await interaction.response.send_message(
            render.HELP_TEXT, ephemeral=True, allowed_mentions=NO_MENTIONS
        )

    @app_commands.command(
        description="View or change this server's Kontext settings (Manage Server)"
    )
    @app_commands.describe(
        provider="Which image service to use",
        nsfw="What to do with outputs flagged as NSFW",
        daily_quota="Jobs per user per day (0 = unlimited)",
        per_user="Jobs one user may have waiting or running",
        iterate="Who may Reroll or Edit someone's result",
        aspect_ratio="Default shape of results",
        safety_tolerance="1 (strict) to 6 (permissive), where the provider supports it",
        allowed_channel="Limit Kontext to this channel (choose again to add more)",
        clear_channels="Allow Kontext in every channel again",
        allowed_role="Limit Kontext to members with this role (choose again to add more)",
        clear_roles="Allow Kontext for every member again",
    )
    @app_commands.choices(
        nsfw=[app_commands.Choice(name=p.value, value=p.value) for p in NsfwPolicy],
        iterate=[app_commands.Choice(name=p.value, value=p.value) for p in IteratePolicy],
        aspect_ratio=[app_commands.Choice(name=r.value, value=r.value) for r in AspectRatio],
    )
    async def settings(
        self,
        interaction: discord.Interaction[Any],
        provider: str | None = None,
        nsfw: app_commands.Choice[str] | None = None,
        daily_quota: app_commands.Range[int, 0, 10_000] | None = None,
        per_user: app_commands.Range[int, 1, 100] | None = None,
        iterate: app_commands.Choice[str] | None = None,
        aspect_ratio: app_commands.Choice[str] | None = None,
        safety_tolerance: app_commands.Range[int, 1, 6] | None = None,
        allowed_channel: discord.TextChannel | None = None,
        clear_channels: bool = False,
        allowed_role: discord.Role | None = None,
        clear_roles: bool = False,
    ) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        who = requester(interaction)
        current = await self.bot.kontext.guild_settings(who.guild_id)
        changes: dict[str, Any] = {}
        if provider is not None:
            changes["provider"] = provider
        if nsfw is not None:
            changes["nsfw_policy"] = nsfw.value
        if daily_quota is not None:
            changes["daily_quota"] = daily_quota
        if per_user is not None:
            changes["max_user_active"] = per_user
        if iterate is not None:
            changes["iterate_policy"] = iterate.value
        if aspect_ratio is not None:
            changes["default_aspect_ratio"] = aspect_ratio.value
        if safety_tolerance is not None:
            changes["safety_tolerance"] = safety_tolerance
        if clear_channels:
            changes["allowed_channel_ids"] = ()
        if allowed_channel is not None:
            base = () if clear_channels else current.allowed_channel_ids
            changes["allowed_channel_ids"] = tuple(dict.fromkeys((*base, allowed_channel.id)))
        if clear_roles:
            changes["allowed_role_ids"] = ()
        if allowed_role is not None:
            roles = () if clear_roles else current.allowed_role_ids
            changes["allowed_role_ids"] = tuple(dict.fromkeys((*roles, allowed_role.id)))
        updated = await self.bot.kontext.update_settings(who, changes)
        prefix = "Saved.\n" if changes else ""
        await interaction.followup.send(
            prefix + render.settings_text(updated, self.bot.kontext.default_provider),
            ephemeral=True,
            allowed_mentions=NO_MENTIONS,
        )

    @settings.autocomplete("provider")
    async def _provider_names(
        self, interaction: discord.Interaction[Any], current: str
    ) -> list[app_commands.Choice[str]]:
        return [
            app_commands.Choice(name=f"{caps.label} ({name})", value=name)
            for name, caps in sorted(self.bot.kontext.capabilities.items())
            if current.lower() in name
        ][:25]

    @app_commands.command(description="Your jobs and this server's queue")
    async def queue(self, interaction: discord.Interaction[Any]) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        text = await self.bot.kontext.queue(requester(interaction))
        await interaction.followup.send(text, ephemeral=True, allowed_mentions=NO_MENTIONS)

    @app_commands.command(description="Cancel one of your jobs (moderators: any job)")
    @app_commands.describe(job="The job number (see /kontext queue)")
    async def cancel(
        self, interaction: discord.Interaction[Any], job: app_commands.Range[int, 1]
    ) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        cancelled = await self.bot.kontext.cancel(requester(interaction), job)
        await interaction.followup.send(
            f"Job {cancelled.id} is cancelled.", ephemeral=True, allowed_mentions=NO_MENTIONS
        )

    @app_commands.command(description="How many edits and credits were used")
    @app_commands.describe(days="How many days back (default 30)", mine="Only your own usage")
    async def usage(
        self,
        interaction: discord.Interaction[Any],
        days: app_commands.Range[int, 1, 365] = 30,
        mine: bool = False,
    ) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        text = await self.bot.kontext.usage(requester(interaction), days=days, only_me=mine)
        await interaction.followup.send(text, ephemeral=True, allowed_mentions=NO_MENTIONS)


class KontextCog(commands.Cog):
    def __init__(self, bot: KontextBot) -> None:
        self.bot = bot
        self.group = KontextGroup(bot)

    async def cog_load(self) -> None:
        self.bot.tree.add_command(self.group)

    async def cog_unload(self) -> None:
        self.bot.tree.remove_command(self.group.name)
