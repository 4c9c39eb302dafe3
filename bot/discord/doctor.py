"""The doctor's checks that need the Discord edge: registered commands up to date, and the
bot's permissions in each server's configured channels (over REST, with the bot token)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import discord

from bot.ops.doctor import Check

#: ``fetch(path)``: Discord's answer to a GET with the bot token, as (status, JSON or None).
Fetch = Callable[[str], Awaitable[tuple[int, Any]]]

#: What the bot needs where it works: see and post, attach images, read replies and threads.
NEEDED: tuple[tuple[str, str], ...] = (
    ("view_channel", "View Channel"),
    ("send_messages", "Send Messages"),
    ("attach_files", "Attach Files"),
    ("read_message_history", "Read Message History"),
    ("create_public_threads", "Create Public Threads"),
    ("send_messages_in_threads", "Send Messages in Threads"),
)


def commands_check(stored: str | None, current: str, *, scope: str) -> Check:
    if stored == current:
        return Check(name="registered commands", ok=True, detail=f"up to date ({scope})")
    why = "never registered here" if stored is None else "changed since they were registered"
    return Check(
        name="registered commands",
        ok=False,
        detail=f"the commands are {why} ({scope}): run `kontext-bot sync` (or start the bot, "
        "which registers them when they changed).",
    )


def channel_permissions(
    channel: dict[str, Any], roles: Sequence[dict[str, Any]], member_roles: Sequence[str], me: int
) -> discord.Permissions:
    """Discord's documented computation: the base from @everyone and the member's roles
    (Administrator: everything), then the channel's overwrites for @everyone, the roles
    together, and the member. Written out because discord.py computes it only from its
    gateway cache, which a one-off REST check does not have."""
    guild_id = str(channel.get("guild_id"))
    by_id = {str(r.get("id")): int(r.get("permissions") or 0) for r in roles}
    base = by_id.get(guild_id, 0)
    for role_id in member_roles:
        base |= by_id.get(str(role_id), 0)
    if discord.Permissions(base).administrator:
        return discord.Permissions.all()
    overwrites = {str(o.get("id")): o for o in channel.get("permission_overwrites") or []}

    def apply(value: int, allow: int, deny: int) -> int:
        return (value & ~deny) | allow

    everyone = overwrites.get(guild_id)
    if everyone is not None:
        base = apply(base, int(everyone.get("allow") or 0), int(everyone.get("deny") or 0))
    allow = deny = 0
    for role_id in member_roles:
        found = overwrites.get(str(role_id))
        if found is not None:
            allow |= int(found.get("allow") or 0)
            deny |= int(found.get("deny") or 0)
    base = apply(base, allow, deny)
    own = overwrites.get(str(me))
    if own is not None:
        base = apply(base, int(own.get("allow") or 0), int(own.get("deny") or 0))
    return discord.Permissions(base)


async def permission_checks(
    fetch: Fetch, bot_id: int, places: Sequence[tuple[int, int, str]]
) -> list[Check]:
    """One line per server: the bot's permissions in its configured and remix channels
    (``places``: guild id, channel id, what the channel is for)."""
    checks: list[Check] = []
    for guild_id in dict.fromkeys(g for g, _c, _w in places):
        name = f"permissions in server {guild_id}"
        status, member = await fetch(f"/guilds/{guild_id}/members/{bot_id}")
        if status != 200 or not isinstance(member, dict):
            checks.append(
                Check(
                    name=name,
                    ok=False,
                    detail=f"the bot is not in this server (HTTP {status}): invite it again, "
                    "or its data is deleted after KONTEXT_GUILD_DATA_DAYS.",
                )
            )
            continue
        _status, roles = await fetch(f"/guilds/{guild_id}/roles")
        problems: list[str] = []
        for _g, channel_id, what in (p for p in places if p[0] == guild_id):
            status, channel = await fetch(f"/channels/{channel_id}")
            if status != 200 or not isinstance(channel, dict):
                problems.append(f"<#{channel_id}> ({what}): the bot cannot see it (HTTP {status})")
                continue
            perms = channel_permissions(
                channel,
                roles if isinstance(roles, list) else [],
                [str(r) for r in member.get("roles") or []],
                bot_id,
            )
            missing = [label for attr, label in NEEDED if not getattr(perms, attr)]
            if missing:
                label = channel.get("name") or channel_id
                problems.append(f"#{label} ({what}) lacks {', '.join(missing)}")
        if problems:
            checks.append(
                Check(
                    name=name,
                    ok=False,
                    detail="; ".join(problems) + ". Give the bot's role these permissions in "
                    "those channels (Edit Channel → Permissions), or change the channels in "
                    "`/kontext-admin settings` and `/kontext-admin remix`.",
                )
            )
        else:
            count = sum(1 for p in places if p[0] == guild_id)
            checks.append(Check(name=name, ok=True, detail=f"{count} channel(s) usable"))
    return checks
