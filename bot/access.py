"""Who may do what: plain rules over ids and permission flags, no discord import.

The cogs read the caller's roles and permissions off the interaction and ask these functions,
so every button press and command applies the same rules (and the rules are unit tested).
"""

from __future__ import annotations

from collections.abc import Collection

from bot.errors import KontextError
from bot.models import GuildSettings, IteratePolicy, Job


class NotAllowed(KontextError):
    code = "not_allowed"


def check_can_request(
    settings: GuildSettings,
    *,
    channel_id: int,
    parent_channel_id: int | None,
    role_ids: Collection[int],
) -> None:
    """Raise :class:`NotAllowed` when the guild limits Kontext to other channels or roles."""
    allowed_channels = set(settings.allowed_channel_ids)
    if allowed_channels and not ({channel_id, parent_channel_id} & allowed_channels):
        where = ", ".join(f"<#{c}>" for c in settings.allowed_channel_ids[:5])
        raise NotAllowed(f"Kontext is not enabled in this channel. Use it in {where}.")
    allowed_roles = set(settings.allowed_role_ids)
    if allowed_roles and not (set(role_ids) & allowed_roles):
        raise NotAllowed(
            "Kontext is limited to certain roles on this server, and you have none of them. "
            "Ask a moderator if you should."
        )


def check_can_iterate(settings: GuildSettings, job: Job, *, user_id: int, moderator: bool) -> None:
    """Reroll and Edit: anyone, or only the requester, depending on the guild's policy."""
    if settings.iterate_policy is IteratePolicy.ANYONE or moderator or user_id == job.user_id:
        return
    raise NotAllowed(
        f"Only <@{job.user_id}> can reroll or edit this result on this server. "
        "Use /edit with the image to make your own version."
    )


def check_can_manage(job: Job, *, user_id: int, moderator: bool, what: str) -> None:
    """Delete and Cancel: the requester or a moderator (Manage Messages)."""
    if moderator or user_id == job.user_id:
        return
    raise NotAllowed(f"Only the person who asked for it or a moderator can {what}.")


def check_can_configure(*, manage_guild: bool) -> None:
    if not manage_guild:
        raise NotAllowed("Changing Kontext's settings needs the Manage Server permission.")
