"""Which language the bot speaks to whom.

* An answer to one member (ephemeral replies, refusals): the server's pinned language
  (``/kontext-admin settings language``), else the member's Discord language
  (``interaction.locale``).
* Public messages (status, results, threads, remix answers): the pinned language, else the
  server's locale. A job records the language of its public messages when it is queued
  (``JobParams.language``), so a worker without a gateway cache words them the same way.

Anything the catalog does not speak falls back to English (:func:`bot.i18n.language_for`).
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

import discord

from bot.i18n import language_for
from bot.models import LANGUAGE_AUTO, GuildSettings, Job

log = logging.getLogger(__name__)


class _Settings(Protocol):
    async def guild_settings(self, guild_id: int) -> GuildSettings: ...


async def pinned_language(client: object, guild_id: int | None) -> str | None:
    """The language the server ``guild_id`` pinned, or ``None`` ("auto", a DM, no storage)."""
    edits: _Settings | None = getattr(client, "edits", None)
    if not guild_id or edits is None:
        return None
    try:
        settings = await edits.guild_settings(guild_id)
    except Exception as err:  # storage trouble: the member's own language will do
        log.warning("could not read the language of guild %d: %s", guild_id, err)
        return None
    return None if settings.language == LANGUAGE_AUTO else settings.language


async def reply_language(interaction: discord.Interaction[Any]) -> str:
    """The language of an answer to the member behind ``interaction``."""
    pinned = await pinned_language(interaction.client, interaction.guild_id)
    return language_for(pinned, str(interaction.locale) if interaction.locale else None)


async def public_language(client: object, guild: discord.Guild | None) -> str:
    """The language of a public message in ``guild`` (pinned, else the server's locale)."""
    if guild is None:
        return language_for(None)
    pinned = await pinned_language(client, guild.id)
    return language_for(pinned, str(guild.preferred_locale))


def job_language(job: Job) -> str:
    """The language of ``job``'s public messages, recorded when it was queued."""
    return language_for(job.params.language)
