"""The one error handler: every command, button and modal failure ends here.

A table maps the exception types we expect to a message for the person who pressed or typed;
anything else is logged with ``log.exception`` under a short id, and the user is given that id
to quote. Users never see a traceback. The answer is worded in the language of the one who
pressed or typed (the server's pinned language, else their Discord language). The handler
answers ephemerally whether or not the interaction was already acknowledged.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.discord.language import reply_language
from bot.discord.mentions import NO_MENTIONS
from bot.errors import KontextError
from bot.i18n import DEFAULT_LANGUAGE, Text, t
from bot.i18n import render as word
from storage.base import DatabaseFault

log = logging.getLogger(__name__)


class Refused(app_commands.CheckFailure):
    """A refusal raised from a check: the tree's handler only sees AppCommandErrors there."""

    def __init__(self, error: KontextError) -> None:
        super().__init__(error.user_message)
        self.original = error


def _perms(names: list[str]) -> str:
    return ", ".join(n.replace("_", " ").replace("guild", "server").title() for n in names)


def _missing_perms(error: Exception) -> Text:
    assert isinstance(error, app_commands.MissingPermissions)
    return t("discord.error.missing_perms", perms=_perms(error.missing_permissions))


def _bot_missing_perms(error: Exception) -> Text:
    assert isinstance(error, app_commands.BotMissingPermissions)
    return t("discord.error.bot_missing_perms", perms=_perms(error.missing_permissions))


def _cooldown(error: Exception) -> Text:
    assert isinstance(error, app_commands.CommandOnCooldown)
    return t("discord.error.cooldown", seconds=f"{error.retry_after:.0f}")


def _transformer(error: Exception) -> Text:
    assert isinstance(error, app_commands.TransformerError)
    return t("discord.error.transformer", value=repr(error.value))


def _database_fault(error: Exception) -> Text:
    # The fault names the database's path and what the operator must do: that is for the
    # log, not for a member.
    log.error("%s", error)
    return t("discord.error.database")


#: Expected failures and what to tell the user. The first matching type wins. A refusal
#: (any other :class:`KontextError`) carries its own words: see :func:`user_message`.
MESSAGES: tuple[tuple[type[BaseException], Callable[[Exception], Text | str]], ...] = (
    (DatabaseFault, _database_fault),
    (app_commands.NoPrivateMessage, lambda e: t("discord.error.no_dm")),
    (app_commands.MissingPermissions, _missing_perms),
    (app_commands.BotMissingPermissions, _bot_missing_perms),
    (app_commands.CommandOnCooldown, _cooldown),
    (app_commands.TransformerError, _transformer),
    (app_commands.CheckFailure, lambda e: t("discord.error.check_failed")),
    (app_commands.CommandNotFound, lambda e: t("discord.error.out_of_date")),
    (app_commands.CommandSignatureMismatch, lambda e: t("discord.error.out_of_date")),
    (discord.Forbidden, lambda e: t("discord.error.forbidden")),
    (discord.NotFound, lambda e: t("discord.error.not_found")),
)


def unwrap(error: BaseException) -> BaseException:
    """The error a command raised, out of discord.py's invoke wrappers."""
    while isinstance(
        error, app_commands.CommandInvokeError | commands.HybridCommandError | Refused
    ):
        error = error.original
    return error


def user_message(
    error: BaseException, *, context: str = "", language: str = DEFAULT_LANGUAGE
) -> str:
    """The message for ``error`` in ``language``; an unexpected one is logged here with a
    fresh short id. A refusal (:class:`KontextError`) is worded by the error itself."""
    error = unwrap(error)
    if isinstance(error, KontextError) and not isinstance(error, DatabaseFault):
        return error.message_in(language)
    if isinstance(error, Exception):
        for kind, message in MESSAGES:
            if isinstance(error, kind):
                return word(message(error), language)
    error_id = secrets.token_hex(3).upper()
    log.error("unexpected error %s in %s", error_id, context or "an interaction", exc_info=error)
    return word(t("discord.error.unexpected", error_id=error_id), language)


async def report(interaction: discord.Interaction[Any], error: BaseException) -> None:
    """Tell the user what went wrong, ephemerally, however far the interaction got."""
    command = interaction.command.qualified_name if interaction.command else None
    custom_id = (interaction.data or {}).get("custom_id") if interaction.data else None
    language = await reply_language(interaction)
    message = user_message(
        error, context=f"/{command}" if command else str(custom_id), language=language
    )
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
