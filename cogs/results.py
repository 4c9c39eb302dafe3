"""The buttons under a result and a status message: Reroll, Info, Delete and Cancel.

Each is a restart-proof ``DynamicItem`` (see :mod:`bot.discord.views`); the edit service
checks, before anything else, that the job a press names belongs to the server it comes from,
then who may use it. Every failure goes to the one error handler.
"""

from __future__ import annotations

from typing import Any

import discord

from bot.discord import render
from bot.discord.client import KontextBot, bot_of
from bot.discord.custom_ids import Action
from bot.discord.interactions import answer, requester, start_job
from bot.discord.language import reply_language
from bot.discord.views import JobButton
from bot.errors import BadRequest
from bot.i18n import render as word
from bot.i18n import t


class RerollButton(JobButton, action=Action.REROLL):
    emoji = "🎲"

    async def pressed(self, interaction: discord.Interaction[Any]) -> None:
        bot = bot_of(interaction)
        who = requester(interaction)
        await start_job(
            interaction, bot.delivery, bot.edits, lambda: bot.edits.reroll(who, self.job_id)
        )


class InfoButton(JobButton, action=Action.INFO):
    emoji = "ℹ️"

    async def pressed(self, interaction: discord.Interaction[Any]) -> None:
        info = await bot_of(interaction).edits.info(requester(interaction), self.job_id)
        await answer(interaction, render.info_text(info, await reply_language(interaction)))


class DeleteButton(JobButton, action=Action.DELETE):
    emoji = "🗑️"
    style = discord.ButtonStyle.danger

    async def pressed(self, interaction: discord.Interaction[Any]) -> None:
        bot = bot_of(interaction)
        message = interaction.message
        if message is None:
            raise BadRequest(t("discord.cog.nothing_to_delete"))
        await bot.edits.check_delete(requester(interaction), self.job_id, message.id)
        await message.delete()
        await bot.edits.forget_message(message.id)
        await answer(interaction, word(t("discord.cog.deleted"), await reply_language(interaction)))


class CancelButton(JobButton, action=Action.CANCEL):
    emoji = "✖️"
    style = discord.ButtonStyle.danger

    async def pressed(self, interaction: discord.Interaction[Any]) -> None:
        job = await bot_of(interaction).edits.cancel(requester(interaction), self.job_id)
        await answer(interaction, render.cancelled_text(job.id, await reply_language(interaction)))


BUTTONS: tuple[type[JobButton], ...] = (RerollButton, InfoButton, DeleteButton, CancelButton)


async def setup(bot: KontextBot) -> None:
    bot.add_buttons(*BUTTONS)


async def teardown(bot: KontextBot) -> None:
    bot.remove_buttons(*BUTTONS)
