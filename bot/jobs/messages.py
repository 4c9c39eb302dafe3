"""User-facing reasons for a job that did not finish, one wording per kind of failure.

The requester never gets a traceback, and is never blamed for what an admin must fix (keys,
credits). Provider modules already word input problems precisely, so those are passed on.
Where the provider gave its own reason, it follows ours, quoted (the provider layer has
already shortened it, removed secrets and defused mentions).

Every reason is a catalog :class:`~bot.i18n.Text` (``jobs.toml``). A job keeps it twice
(:func:`stored`): worded in English (``error_message``: logs, the command line, older code)
and as the Text itself (``error_text``), so whichever process shows it later words it in its
reader's language.
"""

from __future__ import annotations

import logging
from typing import TypedDict

from bot.durations import duration_text
from bot.i18n import Text, render, t, text_to_json
from bot.providers import errors as provider_errors
from bot.providers.errors import ProviderError

log = logging.getLogger(__name__)

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


def provider_failure(err: ProviderError, label: str, *, retried: bool = True) -> tuple[str, Text]:
    """``(code, reason)`` for a provider error that ends the job.

    ``retried``: the request was tried several times (polls), rather than once (a submit
    that must not be sent again).
    """
    if isinstance(err, provider_errors.Moderated):
        return MODERATED, _quoting(t("jobs.failure.moderated", provider=label), err, label)
    if isinstance(err, provider_errors.CreditsExhausted):
        return CREDITS, _quoting(t("jobs.failure.credits", provider=label), err, label)
    if isinstance(err, provider_errors.AuthError):
        return AUTH, _quoting(t("jobs.failure.auth", provider=label), err, label)
    if isinstance(err, provider_errors.UnsupportedRequest | provider_errors.InvalidInput):
        return BAD_INPUT, t("jobs.failure.bad_input", provider=label, reason=err.text)
    if isinstance(err, provider_errors.ProviderTimeout):
        return TIMED_OUT, _quoting(t("jobs.failure.timed_out", provider=label), err, label)
    if isinstance(err, provider_errors.BadAnswer):
        return BAD_ANSWER, t("jobs.failure.bad_answer", provider=label)
    if isinstance(err, provider_errors.UpstreamError | provider_errors.RateLimited):
        down = provider_down(label) if retried else provider_failed(label)
        return PROVIDER_DOWN, _quoting(down, err, label)
    return REFUSED, t("jobs.failure.refused", provider=label, reason=err.text)


def _quoting(reason: Text, err: ProviderError, label: str) -> Text:
    """``reason``, then what the provider said, quoted (when it said anything)."""
    if not err.said:
        return reason
    return t("errors.provider.quoted", message=reason, provider=label, said=err.said)


def provider_down(label: str) -> Text:
    return t("jobs.failure.provider_down", provider=label)


def provider_failed(label: str) -> Text:
    return t("jobs.failure.provider_failed", provider=label)


def rate_limited(label: str, retry_after: float) -> Text:
    wait = duration_text(retry_after, round_up=True)
    return t("jobs.failure.rate_limited", provider=label, wait=wait)


def expired(deadline_seconds: float) -> Text:
    return t("jobs.failure.expired", deadline=duration_text(deadline_seconds, round_up=True))


def expired_at_provider(deadline_seconds: float, label: str) -> Text:
    deadline = duration_text(deadline_seconds, round_up=True)
    return t("jobs.failure.expired_at_provider", deadline=deadline, provider=label)


def internal() -> Text:
    return t("jobs.failure.internal")


def bad_output(label: str) -> Text:
    return t("jobs.failure.bad_output", provider=label)


def download_failed(label: str, why: Text | str | None = None) -> Text:
    if why:
        return t("jobs.failure.download_failed_why", provider=label, why=why)
    return t("jobs.failure.download_failed", provider=label)


def delivery_failed() -> Text:
    return t("jobs.failure.delivery_failed")


def flagged(label: str) -> Text:
    """Every output was flagged by the provider and the server blocks flagged images."""
    return t("jobs.failure.flagged", provider=label)


def not_configured(provider: str) -> Text:
    return t("jobs.failure.not_configured", provider=provider)


def no_image() -> Text:
    """An image of a batch with neither an output nor a recorded failure."""
    return t("jobs.failure.no_image")


def cancelled(*, by_moderator: bool) -> Text:
    if by_moderator:
        return t("jobs.cancelled.by_moderator")
    return t("jobs.cancelled.by_requester")


def slow_down() -> Text:
    """Why a job waits: the provider rate limited it."""
    return t("jobs.delayed.slow_down")


def failed_for_now(code: str) -> Text:
    """Why a job waits: the provider failed in a way that trying again may fix."""
    return t("jobs.delayed.provider_failed", code=code)


def moved(failed: str, now_using: str) -> Text:
    """Why a job went to another provider."""
    return t("jobs.fallback.moved", failed=failed, now_using=now_using)


def paused(label: str, code: str) -> Text:
    """A job waits because its provider is paused (see bot.jobs.pausing)."""
    if code == CREDITS:
        return t("jobs.paused.credits", provider=label)
    return t("jobs.paused.auth", provider=label)


class StoredReason(TypedDict):
    """The columns of a job or a batch item that keep why it failed."""

    error_message: str
    error_text: str | None


def stored(reason: Text | str) -> StoredReason:
    """The job's (or batch item's) columns that keep ``reason``: ``error_message`` in
    English and ``error_text``, the Text as JSON (``None`` for words that are no Text, or a
    Text that cannot be stored: its English words are still kept)."""
    kept: str | None = None
    if isinstance(reason, Text):
        try:
            kept = text_to_json(reason)
        except (TypeError, ValueError):
            log.warning("the reason %r cannot be stored as a text", reason, exc_info=True)
    return StoredReason(error_message=render(reason), error_text=kept)
