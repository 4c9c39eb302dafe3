"""The edit history in Discord: the History and Undo buttons, the "Edit history" message menu
and ``/kontext history``.

* **History** (button, menu, command) answers privately with the contact sheet of the chain
  (one numbered, captioned tile per step) and the numbered prompts, branches marked.
* ``/kontext history`` cannot be a reply (slash commands never are), so it takes an optional
  ``message`` (a link to or the id of a result) and otherwise shows the newest result in the
  channel or thread it runs in. The "Edit history" message menu is the way to point at one.
* **Undo** re-posts the parent output as a new result message, through the delivery.

The edit service refuses a job, output or message link of another server before anything else.
"""

from __future__ import annotations

import io
import re
from typing import Any

import discord
from discord import app_commands

from bot.discord import render
from bot.discord.client import KontextBot, bot_of
from bot.discord.custom_ids import Action
from bot.discord.interactions import MenuCog, answer, requester
from bot.discord.language import job_language, reply_language
from bot.discord.mentions import NO_MENTIONS
from bot.discord.translator import described
from bot.discord.views import JobButton
from bot.edits import NoHistory
from bot.i18n import render as word
from bot.i18n import t

SCAN_LIMIT = 50  # how far back /kontext history looks for the newest result
_MESSAGE_ID = re.compile(r"(?:/(?P<channel>\d{15,20})/)?(?P<message>\d{15,20})/?\s*$")


class HistoryButton(JobButton, action=Action.HISTORY):
    emoji = "🧬"

    async def pressed(self, interaction: discord.Interaction[Any]) -> None:
        message_id = interaction.message.id if interaction.message is not None else None
        who = requester(interaction)
        output_id = await bot_of(interaction).edits.output_of(who, self.job_id, message_id)
        await send_history(interaction, output_id)


class UndoButton(JobButton, action=Action.UNDO):
    emoji = "↩️"

    async def pressed(self, interaction: discord.Interaction[Any]) -> None:
        bot = bot_of(interaction)
        who = requester(interaction)
        target = await bot.edits.undo(who, self.job_id)
        channel = interaction.channel
        if not isinstance(channel, discord.abc.Messageable):
            raise NoHistory(t("discord.cog.cannot_undo_here"))
        delivery = bot.delivery
        upload = await delivery.fitted(
            target.data,
            job_id=target.job.id,
            index=target.output.index,
            limit=interaction.filesize_limit,
        )
        message = await delivery.post(
            channel,
            render.undo_caption(
                prompt=target.job.prompt,
                step=target.step,
                undone_by=who.user_id,
                language=job_language(target.job),
            ),
            [upload],
            view=await delivery.result_view(target.job),
        )  # nobody is pinged: the one who pressed Undo is here already
        await bot.edits.index_result(
            message_id=message.id, channel_id=message.channel.id, output=target.output
        )
        back = t("discord.cog.back_to_step", step=target.step, link=message.jump_url)
        await answer(interaction, word(back, await reply_language(interaction)))


async def send_history(interaction: discord.Interaction[Any], output_id: int) -> None:
    """Answer (privately) with the contact sheet and the numbered chain of ``output_id``."""
    found = await bot_of(interaction).edits.history(requester(interaction), output_id)
    await interaction.followup.send(
        render.history_text(found.tree, await reply_language(interaction)),
        file=discord.File(io.BytesIO(found.sheet), filename="kontext-history.png"),
        ephemeral=True,
        allowed_mentions=NO_MENTIONS,
    )


@app_commands.command(
    name="history", description="The edit history of a result (default: the newest one here)"
)
@described("kontext history")
async def history_command(
    interaction: discord.Interaction[Any], message: str | None = None
) -> None:
    await interaction.response.defer(ephemeral=True, thinking=True)
    bot = bot_of(interaction)
    who = requester(interaction)
    if message is not None:
        match = _MESSAGE_ID.search(message.strip())
        if match is None:
            raise NoHistory(t("discord.cog.history_bad_link"))
        await send_history(interaction, await bot.edits.result_output(who, int(match["message"])))
        return
    channel = interaction.channel
    me = bot.user
    if isinstance(channel, discord.abc.Messageable) and me is not None:
        async for found in channel.history(limit=SCAN_LIMIT):
            if found.author.id != me.id or not found.attachments:
                continue
            if await bot.edits.result_of(found.id) is not None:
                await send_history(interaction, await bot.edits.result_output(who, found.id))
                return
    raise NoHistory(t("discord.cog.history_none_here"))


class HistoryCog(MenuCog):
    """The "Edit history" message menu."""

    def __init__(self, bot: KontextBot) -> None:
        super().__init__(bot, "Edit history", self.history_menu)
        self.bot = bot

    async def history_menu(
        self, interaction: discord.Interaction[Any], message: discord.Message
    ) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        output_id = await self.bot.edits.result_output(requester(interaction), message.id)
        await send_history(interaction, output_id)


BUTTONS: tuple[type[JobButton], ...] = (HistoryButton, UndoButton)


async def setup(bot: KontextBot) -> None:
    await bot.add_cog(HistoryCog(bot))
    bot.kontext_group.add_command(history_command)
    bot.add_buttons(*BUTTONS)


async def teardown(bot: KontextBot) -> None:
    bot.remove_buttons(*BUTTONS)
    bot.kontext_group.remove_command(history_command.name)
