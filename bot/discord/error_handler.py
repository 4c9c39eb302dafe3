"""The one error handler: every command, button and modal failure ends here.

A table maps the exception types we expect to a message for the person who pressed or typed;
anything else is logged with ``log.exception`` under a short id, and the user is given that id
to quote. Users never see a traceback. The handler answers ephemerally whether or not the
interaction was already acknowledged.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.discord.mentions import NO_MENTIONS
from bot.errors import KontextError
from storage.base import DatabaseFault

log = logging.getLogger(__name__)


class Refused(app_commands.CheckFailure):
    """A refusal raised from a check: the tree's handler only sees AppCommandErrors there."""

    def __init__(self, error: KontextError) -> None:
        super().__init__(error.user_message)
        self.original = error


def _perms(names: list[str]) -> str:
    return ", ".join(n.replace("_", " ").replace("guild", "server").title() for n in names)


def _missing_perms(error: Exception) -> str:
    assert isinstance(error, app_commands.MissingPermissions)
    return f"You need the {_perms(error.missing_permissions)} permission to do that."


def _bot_missing_perms(error: Exception) -> str:
    assert isinstance(error, app_commands.BotMissingPermissions)
    return (
        f"I need the {_perms(error.missing_permissions)} permission in this channel to do that. "
        "Ask a moderator to grant it."
    )


def _cooldown(error: Exception) -> str:
    assert isinstance(error, app_commands.CommandOnCooldown)
    return f"Slow down a little: try again in {error.retry_after:.0f} s."


def _transformer(error: Exception) -> str:
    assert isinstance(error, app_commands.TransformerError)
    return f"{error.value!r} is not a valid value for that option. Pick one from the list."


def _database_fault(error: Exception) -> str:
    # The fault names the database's path and what the operator must do: that is for the
    # log, not for a member.
    log.error("%s", error)
    return (
        "My storage is not working right now, so I could not do that. The bot's operator can "
        "see why in its log; please try again later."
    )


def _forbidden(error: Exception) -> str:
    return (
        "Discord refused that: I am missing a permission in this channel "
        "(View Channel, Send Messages, Attach Files or Create Threads). Ask a moderator."
    )


def _out_of_date(error: Exception) -> str:
    return (
        "This command changed since Discord last showed it to you. Reload Discord (Ctrl+R) "
        "and try again."
    )


def _not_found(error: Exception) -> str:
    return "That message or channel no longer exists."


#: Expected failures and what to tell the user. The first matching type wins.
MESSAGES: tuple[tuple[type[BaseException], Callable[[Exception], str]], ...] = (
    (DatabaseFault, _database_fault),
    (KontextError, lambda e: e.user_message if isinstance(e, KontextError) else str(e)),
    (
        app_commands.NoPrivateMessage,
        lambda e: (
            "Kontext works in servers only: use it in a server channel we share. "
            "In DMs only `/kontext help` is available."
        ),
    ),
    (app_commands.MissingPermissions, _missing_perms),
    (app_commands.BotMissingPermissions, _bot_missing_perms),
    (app_commands.CommandOnCooldown, _cooldown),
    (app_commands.TransformerError, _transformer),
    (app_commands.CheckFailure, lambda e: "You can't use that here."),
    (app_commands.CommandNotFound, _out_of_date),
    (app_commands.CommandSignatureMismatch, _out_of_date),
    (discord.Forbidden, _forbidden),
    (discord.NotFound, _not_found),
)


def unwrap(error: BaseException) -> BaseException:
    """The error a command raised, out of discord.py's invoke wrappers."""
    while isinstance(
        error, app_commands.CommandInvokeError | commands.HybridCommandError | Refused
    ):
        error = error.original
    return error


def user_message(error: BaseException, *, context: str = "") -> str:
    """The message for ``error``; an unexpected one is logged here with a fresh short id."""
    error = unwrap(error)
    if isinstance(error, Exception):
        for kind, render in MESSAGES:
            if isinstance(error, kind):
                return render(error)
    error_id = secrets.token_hex(3).upper()
    log.error("unexpected error %s in %s", error_id, context or "an interaction", exc_info=error)
    return (
        f"Something went wrong on my side (error id `{error_id}`). Please try again; if it keeps "
        "happening, give this id to the server's admins."
    )


async def report(interaction: discord.Interaction[Any], error: BaseException) -> None:
    """Tell the user what went wrong, ephemerally, however far the interaction got."""
    command = interaction.command.qualified_name if interaction.command else None
    custom_id = (interaction.data or {}).get("custom_id") if interaction.data else None
    message = user_message(error, context=f"/{command}" if command else str(custom_id))
    allowed = NO_MENTIONS
    try:
        if interaction.response.is_done():
            await interaction.followup.send(message, ephemeral=True, allowed_mentions=allowed)
        else:
            await interaction.response.send_message(
                message, ephemeral=True, allowed_mentions=allowed
            )
    except discord.HTTPException:
        # The token may have expired or the channel vanished: nothing more can be said.
        log.warning("could not report an error to user %s", interaction.user.id)
