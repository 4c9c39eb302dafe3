"""User-facing reasons for a job that did not finish, one wording per kind of failure.

The requester never gets a traceback, and is never blamed for what an admin must fix (keys,
credits). Provider modules already word input problems precisely, so those are passed on.
Where the provider gave its own reason, it follows ours, quoted (the provider layer has
already shortened it, removed secrets and defused mentions).
"""

from __future__ import annotations

from bot.durations import format_duration
from bot.providers.errors import (
    AuthError,
    BadAnswer,
    CreditsExhausted,
    InvalidInput,
    Moderated,
    ProviderError,
    ProviderTimeout,
    RateLimited,
    UnsupportedRequest,
    UpstreamError,
)

# Stable codes stored in ``Job.error_code``.
BAD_INPUT = "bad_input"
REFUSED = "refused"
MODERATED = "moderated"
CREDITS = "credits"
AUTH = "auth"
TIMED_OUT = "timed_out"
PROVIDER_DOWN = "provider_down"
BAD_OUTPUT = "bad_output"
BAD_ANSWER = "bad_answer"
RATE_LIMITED = "rate_limited"
DOWNLOAD_FAILED = "download_failed"
DELIVERY_FAILED = "delivery_failed"
EXPIRED = "expired"
CANCELLED = "cancelled"
INTERNAL = "internal"


def provider_failure(err: ProviderError, label: str, *, retried: bool = True) -> tuple[str, str]:
    """``(code, reason)`` for a provider error that ends the job.

    ``retried``: the request was tried several times (polls), rather than once (a submit
    that must not be sent again).
    """
    said = err.said_by(label)
    if isinstance(err, Moderated):
        return MODERATED, (
            f"{label}'s safety filter refused this edit. Try a different image or prompt.{said}"
        )
    if isinstance(err, CreditsExhausted):
        return CREDITS, (
            f"The bot's {label} account is out of credits, so nothing could be generated. "
            f"This is not your fault: a bot admin must top up the account.{said}"
        )
    if isinstance(err, AuthError):
        return AUTH, (
            f"The bot's {label} API key was refused. This is not your fault: a bot admin "
            f"must fix the key.{said}"
        )
    if isinstance(err, UnsupportedRequest | InvalidInput):
        return BAD_INPUT, f"{label} could not use this request: {err.user_message}"
    if isinstance(err, ProviderTimeout):
        return TIMED_OUT, (
            f"{label} took too long to answer and the edit was stopped. Please try again "
            f"in a few minutes.{said}"
        )
    if isinstance(err, BadAnswer):
        return BAD_ANSWER, (
            f"{label} sent an answer the bot could not use (malformed or too large), so the "
            "edit was stopped. Please try again in a few minutes."
        )
    if isinstance(err, UpstreamError | RateLimited):
        return PROVIDER_DOWN, (provider_down(label) if retried else provider_failed(label)) + said
    return REFUSED, f"{label} refused this edit: {err.user_message}"


def provider_down(label: str) -> str:
    return (
        f"{label} is not answering properly right now, even after several tries. "
        "Please try again in a few minutes."
    )


def provider_failed(label: str) -> str:
    return (
        f"{label} had a problem and did not make the image. It was not sent again, since "
        "that could charge for it twice. Please try again in a few minutes."
    )


def rate_limited(label: str, retry_after: float) -> str:
    return (
        f"{label} is rate limiting the bot and asked it to wait "
        f"{format_duration(retry_after, round_up=True)}, longer than an edit may take. Please "
        "try again later."
    )


def expired(deadline_seconds: float) -> str:
    return (
        f"Your edit did not finish within {format_duration(deadline_seconds, round_up=True)} "
        "and was stopped. The queue may be busy: please try again later."
    )


def expired_at_provider(deadline_seconds: float, label: str) -> str:
    return (
        f"Your edit did not finish within {format_duration(deadline_seconds, round_up=True)}: "
        f"{label} was still working on it or not answering, so it was stopped. Please try "
        "again later."
    )


def internal() -> str:
    return (
        "Something went wrong on our side while running your edit. Please try again; if it "
        "keeps failing, tell a bot admin."
    )


def bad_output(label: str) -> str:
    return f"{label} sent back something that is not a usable image. Please try again."


def download_failed(label: str, why: str | None = None) -> str:
    because = f": {why}" if why else ""
    return f"The result could not be downloaded from {label}{because}. Please try again."


def delivery_failed() -> str:
    return "Your edit finished but could not be posted. Please try again."


def paused(label: str, code: str) -> str:
    """A job waits because its provider is paused (see bot.jobs.pausing)."""
    why = (
        "the bot's account is out of credits"
        if code == CREDITS
        else "the bot's API key was refused"
    )
    return (
        f"{label} is paused because {why}. The bot's operator has been told; your edit "
        "waits in the queue and runs once it works again (or expires at its deadline)."
    )
