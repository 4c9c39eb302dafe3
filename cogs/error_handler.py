"""Installs the one error handler (:func:`bot.discord.error_handler.report`) as the command
tree's while loaded, and answers interactions whose custom_id is none of ours."""

from __future__ import annotations

import logging
from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.discord import custom_ids
from bot.discord.error_handler import report
from bot.discord.language import reply_language
from bot.discord.mentions import NO_MENTIONS
from bot.discord.render import UNKNOWN_COMPONENT
from bot.i18n import render as word

log = logging.getLogger(__name__)


class ErrorHandler(commands.Cog):
    """Installs :func:`report` as the command tree's error handler while loaded."""

    def __init__(self, bot: commands.Bot) -> None:
        self.bot = bot
        self._previous = bot.tree.on_error

    async def cog_load(self) -> None:
        self.bot.tree.on_error = self._on_app_command_error  # type: ignore[method-assign]

    async def cog_unload(self) -> None:
        self.bot.tree.on_error = self._previous  # type: ignore[method-assign]

    async def _on_app_command_error(
        self, interaction: discord.Interaction[Any], error: app_commands.AppCommandError
    ) -> None:
        await report(interaction, error)

    @commands.Cog.listener()
    async def on_interaction(self, interaction: discord.Interaction[Any]) -> None:
        """A button or modal whose custom_id is not one of ours (forged, malformed, or from
        a version of the bot that no longer exists) gets a clear answer, not a silent
        "This interaction failed"."""
        if interaction.type not in (
            discord.InteractionType.component,
            discord.InteractionType.modal_submit,
        ):
            return
        data: dict[str, Any] = dict(interaction.data or {})
        custom_id = str(data.get("custom_id", ""))
        parsed = custom_ids.parse(custom_id)
        is_modal = interaction.type is discord.InteractionType.modal_submit
        if parsed is not None and (parsed[0] in custom_ids.MODAL_ACTIONS) == is_modal:
            return  # one of ours: its button or the edit cog answers
        log.info(
            "interaction with unknown custom_id %r from user %s",
            custom_id[:120],
            interaction.user.id,
        )
        try:
            text = word(UNKNOWN_COMPONENT, await reply_language(interaction))
            await interaction.response.send_message(
                text, ephemeral=True, allowed_mentions=NO_MENTIONS
            )
        except discord.HTTPException as err:
            log.warning("could not answer an unknown component: %s", err)


async def setup(bot: commands.Bot) -> None:
    await bot.add_cog(ErrorHandler(bot))
