"""The provider error tree. Every provider failure becomes one of these at the boundary.

Nothing above ``bot/providers`` catches ``httpx`` exceptions: provider modules convert them
here with ``raise ... from err``. ``retryable`` tells the job engine whether trying again
with the same input can help.
"""

from __future__ import annotations

from collections.abc import Sequence

from bot.errors import KontextError
from bot.i18n import Text


class ProviderError(KontextError, code="provider_error"):
    retryable = False

    def __init__(
        self,
        provider: str,
        user_message: Text | str,
        *,
        detail: str | None = None,
        said: str | None = None,
        nothing_billed: bool = False,
    ) -> None:
        super().__init__(user_message)
        self.provider = provider
        #: What the provider said, for logs (never contains secrets or request bodies).
        self.detail = detail
        #: The provider's own reason, cleaned for showing (one short line, no secret, no
        #: mention that could ping), for front ends to quote after their own words.
        self.said = said
        #: True only when nothing that could bill reached the provider (the connection never
        #: opened, or only a free call such as an upload or a poll failed), so the same
        #: request may be submitted again. Anything else may have started work there.
        self.nothing_billed = nothing_billed

    def said_by(self, label: str) -> str:
        """`` Label said: "…"`` to put after our own words, or nothing."""
        return f' {label} said: "{self.said}"' if self.said else ""


class UnsupportedRequest(ProviderError, code="unsupported"):
    """Refused before any network call: this provider cannot serve this request."""

    def __init__(
        self, provider: str, user_message: Text | str, *, alternatives: Sequence[str] = ()
    ):
        super().__init__(provider, user_message)
        self.alternatives = tuple(alternatives)


class UnsupportedKnob(UnsupportedRequest, code="unsupported_knob"):
    """A generation setting (``knob``: guidance, safety_tolerance, output_format) this provider
    does not take, or not at this value; ``alternatives`` are the providers that would."""

    def __init__(
        self,
        provider: str,
        user_message: Text | str,
        *,
        knob: str,
        alternatives: Sequence[str] = (),
    ) -> None:
        super().__init__(provider, user_message, alternatives=alternatives)
        self.knob = knob


class AuthError(ProviderError, code="auth"):
    """The provider refused our key."""


class CreditsExhausted(ProviderError, code="credits"):
    """The provider's account has no credits left."""


class InvalidInput(ProviderError, code="invalid_input"):
    """The provider refused the request's input (prompt, image or setting)."""


class Moderated(ProviderError, code="moderated"):
    """A terminal outcome: the provider's safety filter refused the input or the output."""


class RateLimited(ProviderError, code="rate_limited"):
    retryable = True

    def __init__(
        self,
        provider: str,
        user_message: Text | str,
        *,
        retry_after: float | None = None,
        detail: str | None = None,
        said: str | None = None,
    ) -> None:
        # A rate-limit answer means the provider did not take the work.
        super().__init__(provider, user_message, detail=detail, said=said, nothing_billed=True)
        self.retry_after = retry_after


class ProviderTimeout(ProviderError, code="timeout"):
    retryable = True


class UpstreamError(ProviderError, code="upstream"):
    """The provider is down or answered nonsense (5xx, malformed JSON, connection errors)."""

    retryable = True


class BadAnswer(UpstreamError, code="bad_answer"):
    """The provider's answer was refused unread or could not be read: too large, not JSON,
    or not the documented shape."""
