"""What the HTTP providers share: construction, the capability check and small helpers.

Each provider module subclasses :class:`HttpProvider`, declares its static
:class:`~bot.providers.base.Capabilities` and maps the common request to its own fields.
"""

from __future__ import annotations

import abc
import base64
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import httpx

from bot.clock import Clock
from bot.config import Settings
from bot.i18n import t
from bot.providers.base import (
    Capabilities,
    Finished,
    GenerationRequest,
    OutputImage,
    Pending,
    ReferenceImage,
    Submitted,
)
from bot.providers.checks import check_request, require_key
from bot.providers.errors import ProviderError, UpstreamError
from bot.providers.http import DEFAULT_POLICY, MAX_JSON_BYTES, Call, HttpRetryPolicy, ProviderHttp


class HttpProvider(abc.ABC):
    """A provider reached over HTTPS with one API key."""

    CAPABILITIES: Capabilities
    KEY_ENV: str
    HTTP: type[ProviderHttp] = ProviderHttp  # a provider may read its error bodies its own way
    #: Capabilities per model tier (``<PROVIDER>_MODEL``) where a provider offers several.
    MODELS: ClassVar[Mapping[str, Capabilities]] = {}

    def __init__(
        self,
        settings: Settings,
        client: httpx.AsyncClient,
        clock: Clock,
        *,
        catalog: Mapping[str, Capabilities] | None = None,
        policy: HttpRetryPolicy = DEFAULT_POLICY,
    ) -> None:
        caps = self.capabilities_for(settings)
        self.caps = caps
        self._key = settings.api_key(caps.name)
        self._catalog: Mapping[str, Capabilities] = catalog or {caps.name: caps}
        self.base_url = settings.base_url(caps.name)
        secret = self._key.get_secret_value() if self._key is not None else None
        self.http = self.HTTP(
            name=caps.name,
            label=caps.label,
            key_env=self.KEY_ENV,
            secret=secret or None,
            client=client,
            clock=clock,
            policy=policy,
        )

    @classmethod
    def capabilities_for(cls, settings: Settings) -> Capabilities:
        """This provider's capabilities under ``settings`` (a model choice may change them)."""
        choice = settings.model_choice(cls.CAPABILITIES.name)
        return cls.MODELS.get(choice or "", cls.CAPABILITIES)

    @property
    def capabilities(self) -> Capabilities:
        return self.caps

    def check(self, request: GenerationRequest) -> None:
        check_request(self.caps, request, self._catalog)
        require_key(self.caps, self.KEY_ENV, self._key)

    def key(self) -> str:
        """The API key; refuses clearly (before any network call) when it is not set."""
        return require_key(self.caps, self.KEY_ENV, self._key)

    async def poll(self, handle: str) -> Pending | Finished:
        raise ProviderError(
            self.CAPABILITIES.name,
            t("errors.provider.no_job_to_poll", provider=self.CAPABILITIES.label),
        )

    @abc.abstractmethod
    async def submit(self, request: GenerationRequest) -> Submitted | Finished:
        """Start a generation (see :class:`~bot.providers.base.Provider`)."""

    async def post_submit(
        self,
        url: str,
        body: dict[str, Any],
        *,
        headers: dict[str, str] | None = None,
        max_bytes: int = MAX_JSON_BYTES,
    ) -> Any:
        """The POST that starts (and may bill) a generation: never sent again once answered."""
        return await self.http.request(
            "POST", url, Call.SUBMIT, json_body=body, headers=headers, max_bytes=max_bytes
        )

    async def reference_urls(self, request: GenerationRequest) -> list[str]:
        """Each reference as a URL the provider reads: its own, else :meth:`host_bytes`'s."""
        return [ref.url or await self.host_bytes(ref.data, ref.mime) for ref in request.references]

    async def host_bytes(self, data: bytes, mime: str) -> str:
        """A URL the provider can read these image bytes from (providers whose
        ``local_bytes`` is ``"upload"`` say how)."""
        raise NotImplementedError(f"{self.caps.label} takes local bytes inline")

    async def upload_file(
        self, url: str, field: str, data: bytes, mime: str, headers: dict[str, str]
    ) -> Any:
        """Upload image bytes as the multipart file ``field``; retried like a poll, since an
        upload bills nothing."""
        filename = f"reference.{mime.split('/')[-1]}"
        return await self.http.request(
            "POST", url, Call.IDEMPOTENT, files={field: (filename, data, mime)}, headers=headers
        )

    def listed_urls(self, answer: Mapping[str, Any], field: str) -> list[str]:
        """``answer[field]``, which must be a list of URLs."""
        urls = answer.get(field)
        if not isinstance(urls, list) or not all(isinstance(u, str) for u in urls):
            raise self.http.bad_answer(f"{field!r} is not a list of URLs")
        return urls

    async def poll_get(self, url: str, headers: dict[str, str]) -> Any:
        """One poll: a GET repeated freely, never faster than the provider's poll interval."""
        return await self.http.request(
            "GET", url, Call.IDEMPOTENT, headers=headers, min_delay=self.caps.min_poll_interval
        )

    async def cancel(self, handle: str) -> bool:
        """None of the seed providers documents a cancel call."""
        return False

    async def key_status(self) -> str | None:
        """Prove the key works with one cheap authenticated call and describe the account;
        ``None`` where the provider documents no such call."""
        return None

    async def aclose(self) -> None:
        """The HTTP client belongs to the caller; nothing to close here."""
        return


def data_uri(data: bytes, mime: str) -> str:
    """Image bytes as an RFC 2397 ``data:`` URI."""
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def inline_reference(ref: ReferenceImage) -> str:
    """A reference as its own URL, else as a ``data:`` URI of its bytes."""
    return ref.url or data_uri(ref.data, ref.mime)


def put_given(body: dict[str, Any], **fields: object) -> None:
    """Set on ``body`` each of ``fields`` that is given (not ``None``)."""
    body.update({name: value for name, value in fields.items() if value is not None})


def url_images(urls: Sequence[str], flags: Sequence[bool] = ()) -> list[OutputImage]:
    """Outputs at ``urls``, flagged NSFW by the matching ``flags`` (none flagged by default)."""
    marks = flags or (False,) * len(urls)
    return [OutputImage(url=url, nsfw=flag) for url, flag in zip(urls, marks, strict=True)]


def bool_flags(value: object, count: int) -> tuple[bool, ...]:
    """Per-output NSFW flags from a list of booleans or one boolean for all outputs."""
    if isinstance(value, bool):
        return (value,) * count
    if isinstance(value, list):
        flags = tuple(bool(v) for v in value[:count])
        return flags + (False,) * (count - len(flags))
    return (False,) * count


def finish(
    provider: HttpProvider,
    outputs: list[OutputImage],
    *,
    seed: int | None = None,
    credits: float | None = None,
    handle: str | None = None,
    detail: str | None = None,
) -> Finished:
    """A finished result, or :class:`~bot.providers.errors.Moderated` when every output is
    flagged. When only some are flagged the result is returned with per-output ``nsfw``
    flags: the caller's NSFW policy decides (block, or spoiler in age-restricted channels)."""
    if outputs and all(o.nsfw for o in outputs):
        raise provider.http.moderated(detail or "every output was flagged NSFW")
    if not outputs:
        raise UpstreamError(
            provider.caps.name,
            t("errors.provider.no_image", provider=provider.caps.label),
            detail=detail,
        )
    return Finished(outputs=tuple(outputs), seed=seed, credits=credits, handle=handle)


def job_failed(provider: HttpProvider, message: str | None) -> ProviderError:
    """A job the provider reports as failed for good: moderation, credits and the like map by
    their words; anything else is a terminal :class:`ProviderError` (polling the same job
    again cannot change its outcome, so it must not look retryable)."""
    error = provider.http.failure(message)
    if isinstance(error, UpstreamError):
        return ProviderError(provider.caps.name, error.text, detail=error.detail, said=error.said)
    return error


def to_int(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip())
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def url_on(url: object, base_url: str, domains: tuple[str, ...] = ()) -> bool:
    """Whether ``url`` may receive this provider's key: an ``https`` URL on one of ``domains``
    (or a subdomain), or a URL with the scheme and host of the configured base URL."""
    if not isinstance(url, str):
        return False
    try:
        parsed, base = httpx.URL(url), httpx.URL(base_url)
    except (httpx.InvalidURL, TypeError):
        return False
    host = parsed.host.lower()
    if parsed.scheme == base.scheme and host == base.host.lower():
        return True
    return parsed.scheme == "https" and any(host == d or host.endswith("." + d) for d in domains)
