"""Refusals the job engine gives front ends, each worded for the person who asked."""

from __future__ import annotations

from bot.errors import KontextError, NotAllowed
from bot.i18n import Text
from storage.base import LimitKind


class LimitReached(KontextError, code="limit"):
    """``submit`` refused by a limit; nothing was queued. Says which limit and when it frees."""

    def __init__(
        self, user_message: Text | str, *, limit: LimitKind, retry_in: float | None
    ) -> None:
        super().__init__(user_message)
        self.limit = limit
        #: Seconds until the limit is expected to free up (``None``: unknown).
        self.retry_in = retry_in


class UnknownProvider(KontextError, code="unknown_provider"):
    """No provider of that name is configured."""


class JobNotFound(KontextError, code="job_not_found"):
    """No job of that number (in this server)."""


class AlreadyFinished(KontextError, code="already_finished"):
    """The job is past the point where it can be cancelled."""


__all__ = ["AlreadyFinished", "JobNotFound", "LimitReached", "NotAllowed", "UnknownProvider"]
