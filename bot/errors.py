"""The root of every error the application raises on purpose, and the refusals shared by
every front end.

Each error carries a message for the person who asked for the work (what went wrong and what
to do about it) plus a stable ``code``; some carry data as well (a job id, a limit). The
message is a catalog :class:`~bot.i18n.Text` that each front end words in its language, or,
where no translation is needed, a plain string. Front ends (the CLI, the Discord error
handler) show it and never a traceback.
"""

from __future__ import annotations

from typing import Any

from bot.i18n import DEFAULT_LANGUAGE, Text, render


class KontextError(Exception):
    """An expected failure with a message fit to show to a user."""

    #: A short, stable machine-readable code (used in logs, storage and tests), given by
    #: each subclass in its header: ``class JobNotFound(KontextError, code="job_not_found")``.
    code: str = "error"

    def __init_subclass__(cls, *, code: str | None = None, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if code is not None:
            cls.code = code

    def __init__(self, message: Text | str) -> None:
        self.text = message
        super().__init__(self.user_message)

    @property
    def user_message(self) -> str:
        """The message in the default language (the CLI, logs)."""
        return render(self.text, DEFAULT_LANGUAGE)

    def message_in(self, language: str) -> str:
        """The message worded in ``language``."""
        return render(self.text, language)

    def __str__(self) -> str:
        return self.user_message


class ReasonedError(KontextError, code="reasoned"):
    """An error that also names its ``reason``: a short machine code such as ``"truncated"``."""

    def __init__(self, reason: str, message: Text | str) -> None:
        super().__init__(message)
        self.reason = reason


class BadRequest(KontextError, code="bad_request"):
    """The request itself is wrong (an empty prompt, too many images, ...); nothing queued."""


class NotAllowed(KontextError, code="not_allowed"):
    """The person asking may not do this here (a rule of the server or of the job's owner)."""
