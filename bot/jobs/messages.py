"""User-facing reasons for a job that did not finish, one wording per kind of failure.

The requester never gets a traceback, and is never blamed for what an admin must fix (keys,
credits). Provider modules already word input problems precisely, so those are passed on.
"""

from __future__ import annotations

from bot.providers.errors import (
    AuthError,
    CreditsExhausted,
    InvalidInput,
    Moderated,
    ProviderError,
    ProviderTimeout,
    RateLimited,
    UnsupportedRequest,
    UpstreamError,
)

from .limits import format_duration

# Stable codes stored in ``Job.error_code``.
BAD_INPUT = "bad_input"
REFUSED = "refused"
MODERATED = "moderated"
CREDITS = "credits"
AUTH = "auth"
TIMED_OUT = "timed_out"
PROVIDER_DOWN = "provider_down"
BAD_OUTPUT = "bad_output"
DOWNLOAD_FAILED = "download_failed"
DELIVERY_FAILED = "delivery_failed"
EXPIRED = "expired"
CANCELLED = "cancelled"
INTERNAL = "internal"


def provider_failure(err: ProviderError, label: str) -> tuple[str, str]:
    """``(code, reason)`` for a provider error that ends the job."""
    if isinstance(err, Moderated):
        return MODERATED, (
            f"{label}'s safety filter refused this edit. Try a different image or prompt."
        )
    if isinstance(err, CreditsExhausted):
        return CREDITS, (
            f"The bot's {label} account is out of credits, so nothing could be generated. "
            "This is not your fault: a bot admin must top up the account."
        )
    if isinstance(err, AuthError):
        return AUTH, (
            f"The bot's {label} API key was refused. This is not your fault: a bot admin "
            "must fix the key."
        )
    if isinstance(err, UnsupportedRequest | InvalidInput):
        return BAD_INPUT, f"{label} could not use this request: {err.user_message}"
    if isinstance(err, ProviderTimeout):
        return TIMED_OUT, (
            f"{label} took too long to answer and the edit was stopped. Please try again "
            "in a few minutes."
        )
    if isinstance(err, UpstreamError | RateLimited):
        return PROVIDER_DOWN, provider_down(label)
    return REFUSED, f"{label} refused this edit: {err.user_message}"


def provider_down(label: str) -> str:
    return (
        f"{label} is not answering properly right now, even after several tries. "
        "Please try again in a few minutes."
    )


def expired(deadline_seconds: float) -> str:
    return (
        f"Your edit did not finish within {format_duration(deadline_seconds)} and was "
        "stopped. The queue may be busy: please try again later."
    )


def internal() -> str:
    return (
        "Something went wrong on our side while running your edit. Please try again; if it "
        "keeps failing, tell a bot admin."
    )


def bad_output(label: str) -> str:
    return f"{label} sent back something that is not a usable image. Please try again."


def download_failed(label: str) -> str:
    return f"The result could not be downloaded from {label}. Please try again."


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
