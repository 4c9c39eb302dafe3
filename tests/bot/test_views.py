"""The views the delivery attaches are made of the buttons the loaded cogs registered."""

from __future__ import annotations

from typing import Any

import discord

from bot.discord import custom_ids
from bot.discord.custom_ids import Action
from bot.discord.views import ButtonCatalog, JobButton


def _button(action: Action) -> type[JobButton]:
    class Button(JobButton, template=custom_ids.template(action)):
        async def pressed(self, interaction: discord.Interaction[Any]) -> None:
            raise NotImplementedError

    Button.action = action
    Button.label = action.value.title()
    return Button


def _ids(view: discord.ui.View) -> list[tuple[int | None, str]]:
    return [(item.row, str(getattr(item, "custom_id", ""))) for item in view.children]


async def test_result_and_status_views_follow_the_registered_buttons() -> None:
    catalog = ButtonCatalog()
    classes = {
        action: _button(action) for action in Action if action not in custom_ids.MODAL_ACTIONS
    }
    catalog.register(*classes.values())
    full = _ids(catalog.result_view(7, undo=True, share=True))
    assert full == [
        (0, "kx:reroll:7"),
        (0, "kx:edit:7"),
        (0, "kx:info:7"),
        (0, "kx:delete:7"),
        (1, "kx:history:7"),
        (1, "kx:undo:7"),
        (1, "kx:share:7"),
    ]
    assert "kx:undo:7" not in str(_ids(catalog.result_view(7)))
    assert _ids(catalog.status_view(7)) == [(None, "kx:cancel:7")]
    catalog.unregister(classes[Action.HISTORY], classes[Action.SHARE])
    assert [cid for _, cid in _ids(catalog.result_view(7, share=True))][4:] == []
    assert all(isinstance(item, JobButton) for item in catalog.result_view(7).children)


def test_modal_actions_are_not_buttons() -> None:
    assert {Action.EDIT_MODAL, Action.MESSAGE_MODAL} == custom_ids.MODAL_ACTIONS
    assert custom_ids.parse("kx:reroll:" + "9" * 20) is None  # past any id storage holds
