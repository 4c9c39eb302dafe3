"""Who may do what: plain rules over ids and permission flags, no discord import.

The edit service applies these to every request, so every command, button, modal, menu and
reply follows the same rules (and the rules are unit tested). The first rule for anything
that names a job or an output is :func:`check_same_server`: an id from another server (a
forged custom_id, a pasted link) is refused before anything else is looked at.
"""

from __future__ import annotations

from collections.abc import Collection

from bot.errors import NotAllowed
from bot.i18n import Text, t
from bot.models import GuildSettings, IteratePolicy, Job


class OtherServer(NotAllowed, code="other_server"):
    """The job or output named by a request belongs to another server (or to no server)."""

    def __init__(self, job_id: int, *, in_dm: bool = False) -> None:
        super().__init__(
            t("errors.access.other_server_dm", job_id=job_id)
            if in_dm
            else t("errors.access.other_server", job_id=job_id)
        )
        self.job_id = job_id
        self.in_dm = in_dm


def check_same_server(job: Job, *, guild_id: int) -> None:
    """Refuse a job of another server (a DM counts as server 0)."""
    if job.guild_id != guild_id:
        raise OtherServer(job.id, in_dm=guild_id == 0)


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
        raise NotAllowed(t("errors.access.channel", channels=where))
    allowed_roles = set(settings.allowed_role_ids)
    if allowed_roles and not (set(role_ids) & allowed_roles):
        raise NotAllowed(t("errors.access.roles"))


def check_can_iterate(settings: GuildSettings, job: Job, *, user_id: int, moderator: bool) -> None:
    """Reroll and Edit: anyone, or only the requester, depending on the guild's policy."""
    if settings.iterate_policy is IteratePolicy.ANYONE or moderator or user_id == job.user_id:
        return
    raise NotAllowed(t("errors.access.iterate", user_id=job.user_id))


def check_can_manage(job: Job, *, user_id: int, moderator: bool, what: Text) -> None:
    """Delete and Cancel: the requester or a moderator (Manage Messages); ``what`` is the
    action, worded (``t("errors.access.action.cancel")``)."""
    if moderator or user_id == job.user_id:
        return
    raise NotAllowed(t("errors.access.manage", action=what))


def check_can_configure(*, manage_guild: bool) -> None:
    if not manage_guild:
        raise NotAllowed(t("errors.access.configure"))


__all__ = [
    "NotAllowed",
    "OtherServer",
    "check_can_configure",
    "check_can_iterate",
    "check_can_manage",
    "check_can_request",
    "check_same_server",
]
