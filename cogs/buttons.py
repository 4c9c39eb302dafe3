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
from discord.ext import commands

from bot import custom_ids
from bot.custom_ids import Action
from bot.kontext_service import ImageInput
from bot.mentions import NO_MENTIONS
from bot.models import MAX_PROMPT_LENGTH
from cogs import errors
from cogs.common import image_input, requester, start_job

if TYPE_CHECKING:
    from bot.client import KontextBot


PROMPT_LABEL = "What should change?"


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
        await start_job(interaction, lambda: bot.kontext.reroll(who, self.job_id))


class EditButton(JobButton, template=custom_ids.template(Action.EDIT)):
    action = Action.EDIT
    label = "Edit"
    emoji = "✏️"

    async def pressed(self, interaction: discord.Interaction[Any]) -> None:
        bot = _bot(interaction)
        who = requester(interaction)
        job = await bot.kontext.job(self.job_id)
        await bot.kontext.check_iterate(who, job)
        await interaction.response.send_modal(
            PromptModal(Action.EDIT_MODAL, self.job_id, "Edit this result")
        )


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


class PromptModal(discord.ui.Modal):
    """Asks for a prompt. Its submission is handled by :class:`ModalSubmissions`, from the
    custom_id alone (``kx:editm:<job>`` or ``kx:msgm:<message>``), so a modal opened before a
    restart still works when it is submitted after it."""

    prompt: discord.ui.TextInput[PromptModal] = discord.ui.TextInput(
        label=PROMPT_LABEL,
        custom_id="prompt",
        style=discord.TextStyle.paragraph,
        max_length=MAX_PROMPT_LENGTH,
        placeholder="e.g. make it night time, keep everything else",
    )

    def __init__(self, action: Action, target_id: int, title: str) -> None:
        super().__init__(title=title, custom_id=custom_ids.build(action, target_id), timeout=None)

    async def on_submit(self, interaction: discord.Interaction[Any]) -> None:
        """Nothing here: see :class:`ModalSubmissions`."""


def submitted_text(components: list[dict[str, Any]], custom_id: str) -> str:
    """The value of the text input ``custom_id`` in a modal submission's components."""
    stack = list(components)
    while stack:
        item = stack.pop()
        if item.get("custom_id") == custom_id and "value" in item:
            return str(item["value"])
        stack.extend(item.get("components") or [])
        if isinstance(item.get("component"), dict):
            stack.append(item["component"])
    return ""


class ModalSubmissions(commands.Cog):
    """Handles our modals' submissions from their custom_ids (restart-proof)."""

    def __init__(self, bot: KontextBot) -> None:
        self.bot = bot

    @commands.Cog.listener()
    async def on_interaction(self, interaction: discord.Interaction[Any]) -> None:
        if interaction.type is not discord.InteractionType.modal_submit:
            return
        data: dict[str, Any] = dict(interaction.data or {})
        parsed = custom_ids.parse(str(data.get("custom_id", "")))
        if parsed is None or parsed[0] not in (Action.EDIT_MODAL, Action.MESSAGE_MODAL):
            return
        action, target = parsed
        try:
            await interaction.response.defer(ephemeral=True, thinking=True)
            prompt = submitted_text(list(data.get("components") or []), "prompt")
            who = requester(interaction)
            if action is Action.EDIT_MODAL:
                await start_job(interaction, lambda: self.bot.kontext.iterate(who, target, prompt))
            else:
                images = await self._images_of(interaction, target)
                await start_job(
                    interaction,
                    lambda: self.bot.kontext.edit_message(who, prompt, target, images),
                )
        except Exception as error:
            await errors.report(interaction, error)

    @staticmethod
    async def _images_of(
        interaction: discord.Interaction[Any], message_id: int
    ) -> list[ImageInput]:
        """The message's image attachments, fetched again (fresh URLs, and it may be old)."""
        channel = interaction.channel
        if not isinstance(channel, discord.abc.Messageable):
            return []
        message = await channel.fetch_message(message_id)
        return [image_input(a, message.id) for a in message.attachments if looks_like_image(a)]


def looks_like_image(attachment: discord.Attachment) -> bool:
    kind = (attachment.content_type or "").split(";")[0]
    if kind:
        return kind.startswith("image/")
    return attachment.filename.lower().rsplit(".", 1)[-1] in {"png", "jpg", "jpeg", "webp", "gif"}


DYNAMIC_ITEMS: tuple[type[JobButton], ...] = (
    RerollButton,
    EditButton,
    InfoButton,
    DeleteButton,
    CancelButton,
)


def result_view(job_id: int, *, undo: bool = False, share: bool = False) -> discord.ui.View:
    """Reroll, Edit, Info, Delete; then History, and Undo (the job edited an earlier output)
    and Share (the server has a gallery channel), from :mod:`cogs.history`."""
    from cogs.history import history_buttons  # imports this module: import when first used

    view = discord.ui.View(timeout=None)
    for cls in (RerollButton, EditButton, InfoButton, DeleteButton):
        view.add_item(cls(job_id))
    for item in history_buttons(job_id, undo=undo, share=share):
        view.add_item(item)
    return view


def status_view(job_id: int) -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    view.add_item(CancelButton(job_id))
    return view
