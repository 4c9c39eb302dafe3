"""Buttons that survive restarts: Reroll, Edit, Info, Delete (results) and Cancel (status).

Each button is a ``discord.ui.DynamicItem`` whose custom_id carries the job id
(``kx:reroll:42``, see :mod:`bot.custom_ids`). :class:`bot.client.KontextBot` registers the
classes at start-up, so a press on a message posted before a restart still reaches the right
callback. Every press checks who may use it (in :class:`bot.kontext_service.KontextService`)
and every failure goes to the one error handler.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, ClassVar, cast

import discord

from bot import custom_ids
from bot.custom_ids import Action
from bot.mentions import NO_MENTIONS
from bot.models import MAX_PROMPT_LENGTH
from cogs import errors
from cogs.common import acknowledge_job, requester

if TYPE_CHECKING:
    from bot.client import KontextBot


def _bot(interaction: discord.Interaction[Any]) -> KontextBot:
    return cast("KontextBot", interaction.client)


class JobButton(discord.ui.DynamicItem[discord.ui.Button[Any]], template=r"kx:(?!)"):
    """A button bound to one job; subclasses set :attr:`action`, :attr:`label`, :attr:`style`."""

    action: ClassVar[Action]
    label: ClassVar[str]
    emoji: ClassVar[str | None] = None
    style: ClassVar[discord.ButtonStyle] = discord.ButtonStyle.secondary

    def __init__(self, job_id: int) -> None:
        super().__init__(
            discord.ui.Button(
                label=self.label,
                emoji=self.emoji,
                style=self.style,
                custom_id=custom_ids.build(self.action, job_id),
            )
        )
        self.job_id = job_id

    @classmethod
    async def from_custom_id(
        cls,
        interaction: discord.Interaction[Any],
        item: discord.ui.Item[Any],
        match: re.Match[str],
        /,
    ) -> JobButton:
        return cls(int(match["id"]))

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        try:
            await self.pressed(interaction)
        except Exception as error:
            await errors.report(interaction, error)

    async def pressed(self, interaction: discord.Interaction[Any]) -> None:
        raise NotImplementedError


class RerollButton(JobButton, template=custom_ids.template(Action.REROLL)):
    action = Action.REROLL
    label = "Reroll"
    emoji = "🎲"

    async def pressed(self, interaction: discord.Interaction[Any]) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        bot = _bot(interaction)
        who = requester(interaction)
        async with bot.delivery.preparing():
            job = await bot.kontext.reroll(who, self.job_id)
            placement = await bot.delivery.open_status(job, interaction)
        await acknowledge_job(interaction, job, placement)


class EditButton(JobButton, template=custom_ids.template(Action.EDIT)):
    action = Action.EDIT
    label = "Edit"
    emoji = "✏️"

    async def pressed(self, interaction: discord.Interaction[Any]) -> None:
        bot = _bot(interaction)
        who = requester(interaction)
        job = await bot.kontext.job(self.job_id)
        await bot.kontext.check_iterate(who, job)
        await interaction.response.send_modal(EditResultModal(self.job_id))


class InfoButton(JobButton, template=custom_ids.template(Action.INFO)):
    action = Action.INFO
    label = "Info"
    emoji = "ℹ️"

    async def pressed(self, interaction: discord.Interaction[Any]) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        text = await _bot(interaction).kontext.info(self.job_id)
        await interaction.followup.send(text, ephemeral=True, allowed_mentions=NO_MENTIONS)


class DeleteButton(JobButton, template=custom_ids.template(Action.DELETE)):
    action = Action.DELETE
    label = "Delete"
    emoji = "🗑️"
    style = discord.ButtonStyle.danger

    async def pressed(self, interaction: discord.Interaction[Any]) -> None:
        bot = _bot(interaction)
        await bot.kontext.check_delete(requester(interaction), self.job_id)
        await interaction.response.defer(ephemeral=True, thinking=True)
        if interaction.message is not None:
            await interaction.message.delete()
            await bot.kontext.forget_message(interaction.message.id)
        await interaction.followup.send("Deleted.", ephemeral=True, allowed_mentions=NO_MENTIONS)


class CancelButton(JobButton, template=custom_ids.template(Action.CANCEL)):
    action = Action.CANCEL
    label = "Cancel"
    emoji = "✖️"
    style = discord.ButtonStyle.danger

    async def pressed(self, interaction: discord.Interaction[Any]) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        job = await _bot(interaction).kontext.cancel(requester(interaction), self.job_id)
        await interaction.followup.send(
            f"Job {job.id} is cancelled.", ephemeral=True, allowed_mentions=NO_MENTIONS
        )


class EditResultModal(discord.ui.Modal, title="Edit this result"):
    """Asks for the prompt of a further edit; the result becomes the reference."""

    prompt: discord.ui.TextInput[EditResultModal] = discord.ui.TextInput(
        label="What should change?",
        style=discord.TextStyle.paragraph,
        max_length=MAX_PROMPT_LENGTH,
        placeholder="e.g. make it night time, keep everything else",
    )

    def __init__(self, job_id: int) -> None:
        super().__init__(custom_id=custom_ids.build(Action.EDIT_MODAL, job_id))
        self.job_id = job_id

    async def on_submit(self, interaction: discord.Interaction[Any]) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        bot = _bot(interaction)
        who = requester(interaction)
        async with bot.delivery.preparing():
            job = await bot.kontext.iterate(who, self.job_id, self.prompt.value)
            placement = await bot.delivery.open_status(job, interaction)
        await acknowledge_job(interaction, job, placement)

    async def on_error(  # type: ignore[override]  # Modal's signature, not View's
        self, interaction: discord.Interaction[Any], error: Exception, /
    ) -> None:
        await errors.report(interaction, error)


DYNAMIC_ITEMS: tuple[type[JobButton], ...] = (
    RerollButton,
    EditButton,
    InfoButton,
    DeleteButton,
    CancelButton,
)


def result_view(job_id: int) -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    for cls in (RerollButton, EditButton, InfoButton, DeleteButton):
        view.add_item(cls(job_id))
    return view


def status_view(job_id: int) -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    view.add_item(CancelButton(job_id))
    return view
