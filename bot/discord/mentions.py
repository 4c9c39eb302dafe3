"""``allowed_mentions`` for every message: nobody is pinged except, at most, the requester.

:class:`Mentions` sends user ids as strings, Discord's documented snowflake type (discord.py
sends ints, which the published API schema does not describe); it survives discord.py's merge
with the client's default, which is also ours.
"""

from __future__ import annotations

from typing import Any

import discord


class Mentions(discord.AllowedMentions):
    def to_dict(self) -> Any:
        data = super().to_dict()
        for key in ("users", "roles"):
            if key in data:
                data[key] = [str(x) for x in data[key]]
        return data

    def merge(self, other: discord.AllowedMentions) -> discord.AllowedMentions:
        merged = super().merge(other)
        return Mentions(
            everyone=merged.everyone,
            users=merged.users,
            roles=merged.roles,
            replied_user=merged.replied_user,
        )


def mentions_for(user_id: int | None) -> Mentions:
    """Ping nobody, except (when given) the requester."""
    users: list[discord.Object] | bool = [discord.Object(user_id)] if user_id else False
    return Mentions(everyone=False, roles=False, users=users, replied_user=False)


NO_MENTIONS = mentions_for(None)
