"""The root of every error the application raises on purpose, and the refusals shared by
every front end.

Each error carries a message written for the person who asked for the work (what went wrong
and what to do about it) plus a stable ``code``; some carry data as well (a job id, a limit).
Front ends (the CLI, the Discord error handler) show ``user_message`` and never a traceback.
"""

from __future__ import annotations


class KontextError(Exception):
    """An expected failure with a message fit to show to a user."""

    #: A short, stable machine-readable code (used in logs, storage and tests).
    code: str = "error"

    def __init__(self, user_message: str) -> None:
        super().__init__(user_message)
        self.user_message = user_message

    def __str__(self) -> str:
        return self.user_message


class ReasonedError(KontextError):
    """An error that also names its ``reason``: a short machine code such as ``"truncated"``."""

    code = "reasoned"

    def __init__(self, reason: str, user_message: str) -> None:
        super().__init__(user_message)
        self.reason = reason


class BadRequest(KontextError):
    """The request itself is wrong (an empty prompt, too many images, ...); nothing queued."""

    code = "bad_request"


class NotAllowed(KontextError):
    """The person asking may not do this here (a rule of the server or of the job's owner)."""

    code = "not_allowed"
