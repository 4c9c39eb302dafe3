"""The buttons under results and status messages, and the prompt modal.

Every button is a ``discord.ui.DynamicItem`` (:class:`JobButton`) whose custom_id carries the
job id (``kx:reroll:42``, see :mod:`bot.discord.custom_ids`), so a press on a message posted
before a restart still reaches its callback. The cog that owns a button defines its class and
registers it (:meth:`ButtonCatalog.register`) when it is loaded; :class:`ButtonCatalog` then
builds the views the delivery and the status board attach, from whichever buttons are
registered, in a fixed order. Every failure of a press goes to the one error handler.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, ClassVar

import discord

from bot.creative_models import MAX_STYLE_NAME
from bot.discord import custom_ids
from bot.discord.custom_ids import Action
from bot.discord.error_handler import report
from bot.i18n import DEFAULT_LANGUAGE, Text, t
from bot.i18n import render as word
from bot.models import MAX_PROMPT_LENGTH

PROMPT_LABEL = t("discord.modal.prompt_label")
COUNT_LABEL = t("discord.modal.count_label")
STYLE_LABEL = t("discord.modal.style_label")

#: The buttons of a result, row by row, and of a status message.
RESULT_ROWS: tuple[tuple[Action, ...], ...] = (
    (Action.REROLL, Action.EDIT, Action.INFO, Action.DELETE),
    (Action.HISTORY, Action.UNDO, Action.SHARE),
)
STATUS_ROW: tuple[Action, ...] = (Action.CANCEL,)


class JobButton(discord.ui.DynamicItem[discord.ui.Button[Any]], template=r"kx:(?!)"):
    """A button bound to one job; subclasses set :attr:`action`, :attr:`style` and implement
    :meth:`pressed`. Its :attr:`label` is a catalog text, worded in the language of the
    message it is under: the catalog's ``discord.button.<action>`` unless the subclass sets
    one."""

    action: ClassVar[Action]
    label: ClassVar[Text | str]
    emoji: ClassVar[str | None] = None
    style: ClassVar[discord.ButtonStyle] = discord.ButtonStyle.secondary
    #: Acknowledge the press privately before :meth:`pressed` runs (a button that answers
    #: with a modal sets this to false: a modal must be the first answer).
    defer: ClassVar[bool] = True

    def __init_subclass__(cls, *, action: Action | None = None, **kwargs: Any) -> None:
        """``action=`` declares the button's action and, from it, the custom_id template it
        answers and its label (a subclass may instead pass ``template=`` and set
        :attr:`action` and :attr:`label` itself)."""
        if action is not None:
            cls.action = action
            kwargs["template"] = custom_ids.template(action)
            if "label" not in vars(cls):
                cls.label = t(f"discord.button.{action.value}")
        super().__init_subclass__(**kwargs)

    def __init__(
        self, job_id: int, *, row: int | None = None, language: str = DEFAULT_LANGUAGE
    ) -> None:
        super().__init__(
            discord.ui.Button(
                label=word(self.label, language),
                emoji=self.emoji,
                style=self.style,
                custom_id=custom_ids.build(self.action, job_id),
                row=row,
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
            if self.defer:
                await interaction.response.defer(ephemeral=True, thinking=True)
            await self.pressed(interaction)
        except Exception as error:
            await report(interaction, error)

    async def pressed(self, interaction: discord.Interaction[Any]) -> None:
        raise NotImplementedError


class ButtonCatalog:
    """The button classes the loaded cogs registered, and the views made of them."""

    def __init__(self) -> None:
        self._classes: dict[Action, type[JobButton]] = {}

    def register(self, *classes: type[JobButton]) -> None:
        for cls in classes:
            self._classes[cls.action] = cls

    def unregister(self, *classes: type[JobButton]) -> None:
        for cls in classes:
            if self._classes.get(cls.action) is cls:
                del self._classes[cls.action]

    def result_view(
        self,
        job_id: int,
        *,
        undo: bool = False,
        share: bool = False,
        picks: Sequence[int] = (),
        language: str = DEFAULT_LANGUAGE,
    ) -> discord.ui.View:
        """Reroll, Edit, Info, Delete; then History, Undo (the job edited an earlier output)
        and Share (the server has a gallery channel); then, under a batch, one button per
        image (``picks``: the numbers posted) that posts that image alone."""
        skip = {a for a, shown in ((Action.UNDO, undo), (Action.SHARE, share)) if not shown}
        pick_row = tuple(custom_ids.PICK_ACTIONS[n] for n in picks if n in custom_ids.PICK_ACTIONS)
        rows = (pick_row, *RESULT_ROWS) if len(pick_row) > 1 else RESULT_ROWS
        return self._view(job_id, rows, skip, language)

    def status_view(self, job_id: int, *, language: str = DEFAULT_LANGUAGE) -> discord.ui.View:
        return self._view(job_id, (STATUS_ROW,), set(), language)

    def _view(
        self,
        job_id: int,
        rows: tuple[tuple[Action, ...], ...],
        skip: set[Action],
        language: str,
    ) -> discord.ui.View:
        view = discord.ui.View(timeout=None)
        for row, actions in enumerate(rows):
            for action in actions:
                cls = self._classes.get(action)
                if cls is not None and action not in skip:
                    at = row if len(rows) > 1 else None
                    view.add_item(cls(job_id, row=at, language=language))
        return view


class PromptModal(discord.ui.Modal):
    """Asks for a prompt. Its submission is handled from the custom_id alone
    (``kx:editm:<job>`` or ``kx:msgm:<message>``) by the edit cog, so a modal opened before a
    restart still works when it is submitted after it. Its title, labels and placeholders
    are worded in the language of the member who opens it."""

    def __init__(
        self, action: Action, target_id: int, title: Text, language: str = DEFAULT_LANGUAGE
    ) -> None:
        super().__init__(
            title=word(title, language),
            custom_id=custom_ids.build(action, target_id),
            timeout=None,
        )
        self.prompt: discord.ui.TextInput[PromptModal] = discord.ui.TextInput(
            label=word(PROMPT_LABEL, language),
            custom_id="prompt",
            style=discord.TextStyle.paragraph,
            max_length=MAX_PROMPT_LENGTH,
            placeholder=word(t("discord.modal.prompt_placeholder"), language),
        )
        self.count: discord.ui.TextInput[PromptModal] = discord.ui.TextInput(
            label=word(COUNT_LABEL, language),
            custom_id="count",
            required=False,
            max_length=1,
            placeholder=word(t("discord.modal.count_placeholder"), language),
        )
        self.style: discord.ui.TextInput[PromptModal] = discord.ui.TextInput(
            label=word(STYLE_LABEL, language),
            custom_id="style",
            required=False,
            max_length=MAX_STYLE_NAME,
            placeholder=word(t("discord.modal.style_placeholder"), language),
        )
        for field in (self.prompt, self.count, self.style):
            self.add_item(field)

    async def on_submit(self, interaction: discord.Interaction[Any]) -> None:
        """Nothing here: the edit cog handles submissions from their custom_ids."""


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
