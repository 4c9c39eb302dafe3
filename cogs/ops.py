"""Operating the bot from Discord: ``/kontext-admin resume``, ``/kontext forget-me``, and
the events the operations core follows (servers joined and left, gateway latency).

* ``/kontext-admin resume provider``: lift a provider's pause at once. A pause holds for
  every server, so only the application's operators (its owner or team) may lift it.
* ``/kontext forget-me``: a member erases their prompts and images in this server, after
  pressing the confirmation button (a ``kx:forget:<user id>`` button only they may press).
* Servers: joining one cancels a pending deletion of its data, leaving one starts the grace
  period, and at ready the servers the bot is in are reported.
* Gateway latency per shard goes to ``/metrics`` every ``LATENCY_SECONDS``.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import discord
from discord import app_commands
from discord.ext import commands, tasks

from bot.discord import render
from bot.discord.client import KontextBot, bot_of
from bot.discord.custom_ids import Action
from bot.discord.interactions import answer, requester
from bot.discord.language import reply_language
from bot.discord.mentions import NO_MENTIONS
from bot.discord.operator import operator_ids
from bot.discord.translator import described
from bot.discord.views import JobButton
from bot.errors import BadRequest, NotAllowed
from bot.i18n import render as word
from bot.i18n import t
from bot.ops.service import Operations

log = logging.getLogger(__name__)

LATENCY_SECONDS = 30.0


def ops_of(bot: KontextBot) -> Operations:
    if bot.ops is None:
        raise BadRequest(t("discord.cog.ops_not_running"))
    return bot.ops


class ForgetButton(JobButton, action=Action.FORGET):
    """Confirms ``/kontext forget-me``; the id in its custom_id is the member who asked."""

    emoji = "🗑️"
    style = discord.ButtonStyle.danger

    async def pressed(self, interaction: discord.Interaction[Any]) -> None:
        if interaction.user.id != self.job_id:
            raise NotAllowed(t("discord.cog.forget_only_asker"))
        bot = bot_of(interaction)
        who = requester(interaction)
        erased = await ops_of(bot).lifecycle.forget_user(who.user_id, guild_id=who.guild_id)
        language = await reply_language(interaction)
        text = render.forget_me_done_text(
            erased.jobs, erased.images, erased.still_running, language
        )
        await answer(interaction, text)


@app_commands.command(
    name="forget-me", description="Erase your prompts and images in this server (asks first)"
)
async def forget_me(interaction: discord.Interaction[Any]) -> None:
    language = await reply_language(interaction)
    view = discord.ui.View(timeout=None)
    view.add_item(ForgetButton(interaction.user.id, language=language))
    await interaction.response.send_message(
        word(render.FORGET_ME_ASK, language),
        view=view,
        ephemeral=True,
        allowed_mentions=NO_MENTIONS,
    )


@app_commands.command(description="Resume a paused image service now (the bot's operators)")
@described("kontext-admin resume")
async def resume(interaction: discord.Interaction[Any], provider: str) -> None:
    await interaction.response.defer(ephemeral=True, thinking=True)
    bot = bot_of(interaction)
    ops = ops_of(bot)
    if interaction.user.id not in await operator_ids(bot):
        raise NotAllowed(t("discord.cog.resume_operators_only"))
    label = ops.pauses.labels.get(provider)
    if label is None:
        known = ", ".join(sorted(ops.pauses.labels))
        raise BadRequest(t("discord.cog.unknown_provider", provider=repr(provider), known=known))
    resumed = await ops.pauses.resume(provider)
    await answer(interaction, render.resume_text(label, resumed, await reply_language(interaction)))


@resume.autocomplete("provider")
async def _paused_providers(
    interaction: discord.Interaction[Any], current: str
) -> list[app_commands.Choice[str]]:
    ops = bot_of(interaction).ops
    if ops is None:
        return []
    return [
        app_commands.Choice(name=f"{label} ({name})", value=name)
        for name, label in sorted(ops.pauses.labels.items())
        if current.lower() in name
    ][:25]


class OpsCog(commands.Cog):
    def __init__(self, bot: KontextBot) -> None:
        self.bot = bot

    async def cog_load(self) -> None:
        if self.bot.ops is not None and self.bot.serve:
            self.latency.start()

    async def cog_unload(self) -> None:
        self.latency.cancel()

    @tasks.loop(seconds=LATENCY_SECONDS)
    async def latency(self) -> None:
        self.record_latency()

    @latency.before_loop
    async def _wait_ready(self) -> None:
        await self.bot.wait_until_ready()

    def record_latency(self) -> None:
        """Each shard's latest heartbeat round trip, for ``/metrics``."""
        if self.bot.ops is None:
            return
        bot = self.bot
        pairs = (
            bot.latencies
            if isinstance(bot, discord.AutoShardedClient)
            else [(bot.shard_id or 0, bot.latency)]
        )
        for shard_id, seconds in pairs:
            if math.isfinite(seconds):
                self.bot.ops.metrics.gateway_latency(shard_id, seconds)

    @commands.Cog.listener()
    async def on_ready(self) -> None:
        # Only a process that sees every server may say which ones the bot left: one that
        # runs some of the shards sees only their servers.
        if self.bot.ops is not None and (self.bot.shard_count or 1) == 1:
            await self.bot.ops.lifecycle.sync_guilds([g.id for g in self.bot.guilds])

    @commands.Cog.listener()
    async def on_guild_join(self, guild: discord.Guild) -> None:
        if self.bot.ops is not None:
            await self.bot.ops.lifecycle.guild_present(guild.id)

    @commands.Cog.listener()
    async def on_guild_available(self, guild: discord.Guild) -> None:
        # A server that comes back after an outage or a GUILD_DELETE (discord.py reports a
        # join of a server it had in its cache this way) is one the bot is in.
        if self.bot.ops is not None:
            await self.bot.ops.lifecycle.guild_present(guild.id)

    @commands.Cog.listener()
    async def on_guild_remove(self, guild: discord.Guild) -> None:
        if self.bot.ops is not None:
            await self.bot.ops.lifecycle.guild_left(guild.id)


async def setup(bot: KontextBot) -> None:
    await bot.add_cog(OpsCog(bot))
    bot.add_dynamic_items(ForgetButton)
    bot.kontext_group.add_command(forget_me)
    bot.admin_group.add_command(resume)


async def teardown(bot: KontextBot) -> None:
    bot.admin_group.remove_command(resume.name)
    bot.kontext_group.remove_command(forget_me.name)
    bot.remove_dynamic_items(ForgetButton)
