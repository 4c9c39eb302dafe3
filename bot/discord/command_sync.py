"""Registering the slash commands with Discord only when they changed.

Discord limits how often an application may overwrite its commands (a daily budget for
global commands), so a start never registers them blindly: the payload the tree would send
is hashed (with the German and Japanese localizations the translator adds), and the hash of
what was last registered is kept in the database per scope (the application, and a guild
when ``KONTEXT_DEV_GUILD_ID`` is set). ``kontext-bot sync`` forces a registration.
``kontext-bot doctor`` compares the two hashes too.

Every command is offered in servers only: the tree's default contexts are "guild", and each
top-level command is marked guild-only, so Discord never offers one in a DM.
"""

from __future__ import annotations

import hashlib
import json
import logging
from typing import Any, Protocol

import discord
from discord import app_commands

log = logging.getLogger(__name__)

GUILD_ONLY = app_commands.AppCommandContext(guild=True, dm_channel=False, private_channel=False)


class DigestStore(Protocol):
    async def command_digest(self, scope: str) -> str | None: ...

    async def set_command_digest(self, scope: str, digest: str, *, now: float) -> None: ...


def guild_only_everywhere(tree: app_commands.CommandTree[Any]) -> None:
    """Mark every command (slash commands, groups and context menus) as guild-only."""
    tree.allowed_contexts = GUILD_ONLY
    for command in tree.get_commands():
        command.guild_only = True
        command.allowed_contexts = GUILD_ONLY


def scope_of(application_id: int | None, guild_id: int | None) -> str:
    """Where commands are registered: the application's global list, or one guild's."""
    where = f"guild:{guild_id}" if guild_id else "global"
    return f"{application_id or 0}:{where}"


async def tree_payload(
    tree: app_commands.CommandTree[Any], guild_id: int | None
) -> list[dict[str, Any]]:
    """The payload :meth:`CommandTree.sync` sends for that scope, localizations included
    (a guild's commands are the global ones copied to it)."""
    guild = discord.Object(guild_id) if guild_id else None
    if guild is not None:
        tree.copy_global_to(guild=guild)
    commands = tree.get_commands(guild=guild)
    translator = tree.translator
    if translator is not None:
        found = [await command.get_translated_payload(tree, translator) for command in commands]
    else:
        found = [command.to_dict(tree) for command in commands]
    return sorted(found, key=lambda item: (item.get("type", 1), item["name"]))


async def tree_digest(tree: app_commands.CommandTree[Any], guild_id: int | None) -> str:
    """A hash of the payload :meth:`CommandTree.sync` would send for that scope: a changed
    description or translation registers the commands again."""
    payload = await tree_payload(tree, guild_id)
    encoded = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(encoded.encode()).hexdigest()


async def sync_if_changed(
    tree: app_commands.CommandTree[Any],
    store: DigestStore,
    *,
    application_id: int | None,
    guild_id: int | None,
    now: float,
    force: bool = False,
) -> int | None:
    """Register the commands when their payload changed (or ``force``); the number
    registered, or ``None`` when nothing was sent."""
    guild = discord.Object(guild_id) if guild_id else None
    scope = scope_of(application_id, guild_id)
    digest = await tree_digest(tree, guild_id)
    if not force and await store.command_digest(scope) == digest:
        log.info("commands unchanged since the last registration (%s): not synced", scope)
        return None
    synced = await tree.sync(guild=guild)
    await store.set_command_digest(scope, digest, now=now)
    log.info("registered %d commands (%s)", len(synced), scope)
    return len(synced)
