"""The custom_ids of the bot's buttons and modals: ``kx:<action>:<job id>``.

Buttons must keep working after a restart, so everything a press needs is in its custom_id
(the job id; the rest is in storage), and the cog that owns a button registers one
``discord.ui.DynamicItem`` per action whose template is :func:`template`. Discord caps a
custom_id at 100 characters; ours stay under 30. A custom_id is only ever a claim: the edit
service checks that the job it names belongs to the server the press comes from.
"""

from __future__ import annotations

import re
from enum import StrEnum

PREFIX = "kx"
MAX_CUSTOM_ID = 100


class Action(StrEnum):
    REROLL = "reroll"
    EDIT = "edit"
    INFO = "info"
    DELETE = "delete"
    CANCEL = "cancel"
    EDIT_MODAL = "editm"  # the modal the Edit button opens
    MESSAGE_MODAL = "msgm"  # the modal of the "Edit image" context menu (message id)
    HISTORY = "history"  # the chain's contact sheet
    UNDO = "undo"  # re-post the parent output as the new tip
    SHARE = "share"  # post the result to the gallery channel
    FORGET = "forget"  # confirm /kontext forget-me (the id is the member's user id)
    PICK_1 = "pick1"  # post image 1 of a batch alone as a new result
    PICK_2 = "pick2"
    PICK_3 = "pick3"
    PICK_4 = "pick4"


#: The pick buttons of a batch, by image number.
PICK_ACTIONS: dict[int, Action] = {
    1: Action.PICK_1,
    2: Action.PICK_2,
    3: Action.PICK_3,
    4: Action.PICK_4,
}

#: The actions of modals (the others are buttons).
MODAL_ACTIONS = frozenset({Action.EDIT_MODAL, Action.MESSAGE_MODAL})


def build(action: Action, target_id: int) -> str:
    """The custom_id for ``action`` on ``target_id`` (a job id, or a message id for MSG)."""
    if target_id < 1:
        raise ValueError(f"ids are positive, got {target_id}")
    custom_id = f"{PREFIX}:{action.value}:{target_id}"
    if len(custom_id) > MAX_CUSTOM_ID:  # pragma: no cover - ints are never this long
        raise ValueError("custom_id too long")
    return custom_id


def template(action: Action) -> str:
    """The regex a DynamicItem matches, capturing the id as ``id``."""
    return rf"{PREFIX}:{re.escape(action.value)}:(?P<id>[1-9][0-9]{{0,18}})"


def parse(custom_id: str) -> tuple[Action, int] | None:
    """``(action, id)`` for one of ours, ``None`` for anything else."""
    for action in Action:
        match = re.fullmatch(template(action), custom_id)
        if match:
            return action, int(match["id"])
    return None
