"""The one retry and timeout policy for provider HTTP calls, and the one place where httpx
failures and HTTP statuses become the provider error tree.

Why the rules are what they are:

* No provider documents idempotency keys, so a submit that reached the provider may already
  be billed. A submit (:attr:`Call.SUBMIT`) is therefore retried only when the request
  provably never left: a connect error, a connect timeout or a pool timeout. Once any answer
  arrives, or the connection breaks after sending, or the read times out, the outcome is
  reported and nothing is sent again.
  Errors that prove nothing billable reached the provider carry ``nothing_billed``; only
  those may be submitted again by the caller.
* Polls and uploads (:attr:`Call.IDEMPOTENT`) bill nothing, so they are retried on 408, 409,
  429, 5xx and every transport error, with exponential backoff, jitter and the provider's
  ``Retry-After`` (capped: a wait longer than :attr:`HttpRetryPolicy.max_retry_after` is handed
  back as :class:`~bot.providers.errors.RateLimited` for the caller to schedule).
* Every exchange is bounded as a whole, on the injected clock: sending, waiting and reading
  the body together may take at most the call's timeout. httpx's own timeouts apply per read
  and restart with every byte, so alone they would let a provider that trickles bytes hold a
  request open forever. Callers bound the whole job the same way (:func:`bot.clock.within`).
* Answers are read with a size cap while they stream (:data:`MAX_JSON_BYTES` unless the call
  says otherwise): a declared or actual size beyond it is refused as
  :class:`~bot.providers.errors.BadAnswer` before it can fill memory.
* Waiting goes through the injectable :class:`~bot.clock.Clock` so tests never sleep.
* Secrets: request bodies are never logged (ModelsLab carries the key in the body) and every
  text taken from a provider passes through :meth:`ProviderHttp.safe` before it reaches an
  exception or a log line.
"""

from __future__ import annotations

import json
import logging
import random
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from enum import Enum
from typing import Any, TypeVar

import httpx

from bot.clock import Clock, within
from bot.i18n import Text, t
from bot.providers.errors import (
    AuthError,
    BadAnswer,
    CreditsExhausted,
    InvalidInput,
    Moderated,
    ProviderError,
    ProviderTimeout,
    RateLimited,
    UpstreamError,
)
from bot.text import escape_controls

log = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504})
_MAX_PROVIDER_TEXT = 200
#: The largest JSON answer read from a provider (answers with inline images ask for more).
MAX_JSON_BYTES = 4 * 1024 * 1024


class Call(Enum):
    """How a request may be repeated."""

    SUBMIT = "submit"  # may bill: repeat only if the request never left
    IDEMPOTENT = "idempotent"  # polls, uploads: repeat freely within the attempt budget


@dataclass(frozen=True)
class HttpRetryPolicy:
    max_attempts: int = 4
    base_delay: float = 0.5
    max_delay: float = 8.0
    max_retry_after: float = 60.0  # a longer wait is the caller's to schedule, not ours
    connect_timeout: float = 10.0
    # The longest one exchange may take, answer body included (a synchronous provider
    # answers only when the image is done).
    submit_timeout: float = 180.0
    poll_timeout: float = 60.0  # polls and uploads
    jitter: bool = True

    def backoff(self, attempt: int, rng: random.Random) -> float:
        """Delay before retry number ``attempt`` (1-based): doubling, capped, with jitter."""
        delay: float = min(self.max_delay, self.base_delay * 2 ** (attempt - 1))
        if self.jitter:
            delay *= 0.5 + rng.random() / 2
        return delay

    def limit(self, call: Call) -> float:
        """Seconds one whole exchange of this kind may take."""
        return self.submit_timeout if call is Call.SUBMIT else self.poll_timeout

    def timeout(self, call: Call) -> httpx.Timeout:
        """httpx's per-read timeouts (wall clock), a backstop under :meth:`limit`."""
        return httpx.Timeout(self.limit(call), connect=self.connect_timeout)


DEFAULT_POLICY = HttpRetryPolicy()


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if now is None:
        return None
    return max(0.0, when.timestamp() - now)


def to_float(value: object) -> float | None:
    """A number that a provider may send as a number or as a string (ModelsLab does both)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return None
    return None


def provider_message(body: object) -> str | None:
    """The human text of an error body, whichever key this provider uses for it."""
    if isinstance(body, dict):
        for key in ("message", "messege", "error", "detail", "msg"):
            value = body.get(key)
            if isinstance(value, str) and value.strip():
                return value
            if isinstance(value, dict | list):
                nested = provider_message(value)
                if nested:
                    return nested
        data = body.get("data")
        if isinstance(data, dict):
            return provider_message(data)
    if isinstance(body, list) and body:
        return provider_message(body[0])
    return None


_MODERATION_WORDS = ("nsfw", "safety", "moderat", "inappropriate", "content policy", "flagged")
_CREDIT_WORDS = ("credit", "balance", "insufficient fund", "payment", "quota exceeded")
_RATE_WORDS = ("queued request", "rate limit", "too many request", "concurren")
_AUTH_WORDS = ("api key", "apikey", "unauthori", "invalid key", "authenticat")
_INPUT_WORDS = (
    "unable to fetch image",
    "invalid",
    "required",
    "must be",
    "validation",
    "not supported",
    "too large",
)


E = TypeVar("E", bound=ProviderError)


@dataclass(kw_only=True, eq=False)
class ProviderHttp:
    """HTTP for one provider: retries, timeouts and conversion to the error tree.

    The :class:`httpx.AsyncClient` belongs to the caller (one per process); this object only
    borrows it. ``key_env`` names the setting a person must fix when the key is refused;
    ``secret`` (the key itself) is masked in any provider text that echoes it.
    """

    name: str
    label: str
    key_env: str
    secret: str | None = field(repr=False)
    client: httpx.AsyncClient
    clock: Clock
    policy: HttpRetryPolicy = DEFAULT_POLICY
    rng: random.Random = field(default_factory=random.Random, repr=False)

    # -- text hygiene -------------------------------------------------------------------

    def safe(self, text: str | None) -> str:
        """Provider text fit for a user message or a log: one line, short, no secret, control
        and formatting characters (ANSI escapes, bidi overrides) shown as escapes, and no
        ``@`` that could mention anyone (a full-width ``＠`` reads the same and pings no one,
        on Discord or anywhere else)."""
        if not text:
            return ""
        if self.secret:
            text = text.replace(self.secret, "***")
        text = escape_controls(" ".join(text.split()))
        if len(text) > _MAX_PROVIDER_TEXT:
            text = text[: _MAX_PROVIDER_TEXT - 1] + "…"
        return text.replace("@", "\uff20")

    # -- sending ------------------------------------------------------------------------

    async def request(
        self,
        method: str,
        url: str,
        call: Call,
        *,
        json_body: dict[str, Any] | None = None,
        files: dict[str, tuple[str, bytes, str]] | None = None,
        headers: dict[str, str] | None = None,
        min_delay: float = 0.0,
        max_bytes: int = MAX_JSON_BYTES,
    ) -> Any:
        """Send, retrying as the policy allows, and return the decoded JSON of a 2xx answer.

        ``min_delay`` floors the wait between attempts (a provider's minimum poll interval
        holds for retried polls too); ``max_bytes`` caps the answer. Raises a
        :class:`ProviderError` subclass otherwise.
        """
        attempt = 0
        while True:
            attempt += 1
            try:
                response, body = await within(
                    self.clock,
                    self.policy.limit(call),
                    self._exchange(method, url, call, json_body, files, headers, max_bytes),
                )
            except (httpx.TransportError, TimeoutError) as err:
                never_sent = isinstance(
                    err, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout
                )
                error = self._transport_error(err, call, never_sent=never_sent)
                may_retry = call is Call.IDEMPOTENT or never_sent
                if not may_retry or attempt >= self.policy.max_attempts:
                    raise error from err
                delay = max(min_delay, self.policy.backoff(attempt, self.rng))
                log.warning(
                    "%s %s failed (%s); retry %d in %.1fs",
                    self.label,
                    call.value,
                    type(err).__name__,
                    attempt,
                    delay,
                )
                await self.clock.sleep(delay)
                continue

            if response.is_success:
                return self.decode(response, body, call)

            error = self.status_error(response, body)
            if call is Call.IDEMPOTENT:
                error.nothing_billed = True
            retry = (
                call is Call.IDEMPOTENT
                and response.status_code in RETRY_STATUSES
                and attempt < self.policy.max_attempts
            )
            if not retry:
                raise error
            delay = max(min_delay, self.policy.backoff(attempt, self.rng))
            if isinstance(error, RateLimited) and error.retry_after is not None:
                if error.retry_after > self.policy.max_retry_after:
                    raise error
                delay = max(delay, error.retry_after)
            log.warning(
                "%s %s answered HTTP %d; retry %d in %.1fs",
                self.label,
                call.value,
                response.status_code,
                attempt,
                delay,
            )
            await self.clock.sleep(delay)

    async def _exchange(
        self,
        method: str,
        url: str,
        call: Call,
        json_body: dict[str, Any] | None,
        files: dict[str, tuple[str, bytes, str]] | None,
        headers: dict[str, str] | None,
        max_bytes: int,
    ) -> tuple[httpx.Response, bytes]:
        """One request and its whole answer, read with the size cap. An error answer over the
        cap is judged by its status alone (its body is not read)."""
        request = self.client.build_request(
            method,
            url,
            json=json_body,
            files=files,
            headers=headers,
            timeout=self.policy.timeout(call),
        )
        response = await self.client.send(request, stream=True)
        try:
            declared = response.headers.get("content-length", "")
            body = bytearray()
            if declared.isdigit() and int(declared) > max_bytes:
                how = f"declared {declared} bytes"
            else:
                how = ""
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) > max_bytes:
                        how = "still streaming"
                        break
            if how and response.is_success:
                raise self._oversized(response, call, max_bytes, how)
            if how:
                body = bytearray()
        finally:
            await response.aclose()
        return response, bytes(body)

    def _oversized(
        self, response: httpx.Response, call: Call, max_bytes: int, how: str
    ) -> BadAnswer:
        log.warning(
            "%s %s: an answer over %d bytes was refused (HTTP %d, %s)",
            self.label,
            call.value,
            max_bytes,
            response.status_code,
            how,
        )
        return self.bad_answer(
            f"over {max_bytes} bytes (HTTP {response.status_code}, {how})",
            call=call,
            what=t("errors.provider.answer.too_large"),
        )

    def decode(
        self, response: httpx.Response, body: bytes | None = None, call: Call = Call.SUBMIT
    ) -> Any:
        """The JSON of an answer (``body``: read with the cap; default: the response's)."""
        if body is None:
            body = response.content
        try:
            return json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise self.bad_answer(
                f"HTTP {response.status_code}, {len(body)} bytes of "
                f"{response.headers.get('content-type', 'unknown type')}",
                call=call,
                what=t("errors.provider.answer.not_json"),
            ) from err

    def bad_answer(
        self, why: str, *, call: Call = Call.SUBMIT, what: Text | None = None
    ) -> BadAnswer:
        """The typed failure for an answer that was refused or could not be read."""
        return BadAnswer(
            self.name,
            t(
                "errors.provider.bad_answer",
                provider=self.label,
                what=what or t("errors.provider.answer.unreadable"),
            ),
            detail=why,
            nothing_billed=call is Call.IDEMPOTENT,
        )

    # -- conversion ---------------------------------------------------------------------

    def _transport_error(
        self, err: httpx.TransportError | TimeoutError, call: Call, *, never_sent: bool
    ) -> ProviderError:
        kind = type(err).__name__
        billed_nothing = never_sent or call is Call.IDEMPOTENT
        if isinstance(err, TimeoutError):
            kind = f"no complete answer within {self.policy.limit(call):g} s"
        if isinstance(err, httpx.TimeoutException | TimeoutError):
            if call is Call.SUBMIT and not never_sent:
                message = t("errors.provider.no_answer_sent", provider=self.label)
            else:
                message = t("errors.provider.no_answer", provider=self.label)
            return ProviderTimeout(self.name, message, detail=kind, nothing_billed=billed_nothing)
        message = t("errors.provider.unreachable", provider=self.label, kind=kind)
        return UpstreamError(self.name, message, detail=kind, nothing_billed=billed_nothing)

    def status_error(self, response: httpx.Response, body: bytes | None = None) -> ProviderError:
        """Map a non-2xx answer (its body read with the cap) to the error tree."""
        raw = response.content if body is None else body
        try:
            parsed: object = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError):
            parsed = None
        retry_after = parse_retry_after(response.headers.get("Retry-After"), now=self.clock.now())
        if retry_after is None and isinstance(parsed, dict):
            retry_after = to_float(parsed.get("retry_after"))
        return self.for_status(response.status_code, provider_message(parsed), retry_after)

    def for_status(
        self, status: int, message: str | None, retry_after: float | None = None
    ) -> ProviderError:
        """Map an HTTP status (or a status code reported inside a 200 body) to the tree."""
        said = self.safe(message)
        detail = f"HTTP {status}: {said}" if said else f"HTTP {status}"
        if status == 429:
            return self.rate_limited(said, retry_after, detail)
        if status == 402 or (status == 403 and _has(said, _CREDIT_WORDS)):
            return self.credits(detail, said)
        if status in (401, 403):
            return self._error(
                AuthError,
                t(
                    "errors.provider.key_refused_status",
                    provider=self.label,
                    status=status,
                    key_env=self.key_env,
                ),
                detail,
                said,
            )
        if status in (400, 404, 413, 415, 422):
            if _has(said, _MODERATION_WORDS):
                return self.moderated(detail, said)
            return self.invalid(said, detail)
        if status in (408, 504):
            return self._error(
                ProviderTimeout,
                t("errors.provider.timed_out", provider=self.label),
                detail,
                said,
            )
        return self._error(
            UpstreamError,
            t("errors.provider.http_problem", provider=self.label, status=status),
            detail,
            said,
        )

    def failure(
        self, message: str | None, *, detail: str | None = None, retry_after: float | None = None
    ) -> ProviderError:
        """Map a failure reported inside an HTTP 200 answer (or a failed job) by its words."""
        said = self.safe(message)
        detail = detail or said or None
        if _has(said, _MODERATION_WORDS):
            return self.moderated(detail, said)
        if _has(said, _CREDIT_WORDS):
            return self.credits(detail, said)
        if _has(said, _RATE_WORDS) or retry_after is not None:
            return self.rate_limited(said, retry_after, detail)
        if _has(said, _AUTH_WORDS) and not _has(said, ("fetch",)):
            return self._error(
                AuthError,
                t("errors.provider.key_refused", provider=self.label, key_env=self.key_env),
                detail,
                said,
            )
        if _has(said, _INPUT_WORDS):
            return self.invalid(said, detail)
        return self._saying(UpstreamError, "errors.provider.could_not_make", detail, said)

    def _error(self, kind: type[E], message: Text, detail: str | None, said: str) -> E:
        """A ``kind`` of error: our ``message``, then the provider's own words, if any."""
        return kind(self.name, self._quote(message, said), detail=detail, said=said or None)

    def _quote(self, message: Text, said: str) -> Text:
        """Our ``message``, then the provider's own words (already cleaned by :meth:`safe`)."""
        if not said:
            return message
        return t("errors.provider.quoted", message=message, provider=self.label, said=said)

    def credits(self, detail: str | None, said: str = "") -> CreditsExhausted:
        message = t("errors.provider.credits", provider=self.label)
        return self._error(CreditsExhausted, message, detail, said)

    def moderated(self, detail: str | None, said: str = "") -> Moderated:
        message = t("errors.provider.moderated", provider=self.label)
        return self._error(Moderated, message, detail, said)

    def invalid(self, said: str, detail: str | None) -> InvalidInput:
        return self._saying(InvalidInput, "errors.provider.invalid", detail, said)

    def _saying(self, kind: type[E], key: str, detail: str | None, said: str) -> E:
        """A ``kind`` of error worded by ``key``, which quotes what the provider said;
        ``key`` + ``_no_reason`` when it said nothing."""
        message = (
            t(key, provider=self.label, said=said)
            if said
            else t(f"{key}_no_reason", provider=self.label)
        )
        return kind(self.name, message, detail=detail, said=said or None)

    def rate_limited(self, said: str, retry_after: float | None, detail: str | None) -> RateLimited:
        return RateLimited(
            self.name,
            t("errors.provider.busy_for", provider=self.label, seconds=f"{retry_after:.0f}")
            if retry_after
            else t("errors.provider.busy", provider=self.label),
            retry_after=retry_after,
            detail=detail or said or None,
            said=said or None,
        )


def _has(text: str, words: tuple[str, ...]) -> bool:
    lowered = text.lower()
    return any(word in lowered for word in words)
