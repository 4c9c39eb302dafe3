"""Downloads from an allowlist of hosts, with a size cap, a deadline and checked redirects.

The bot fetches user attachments and provider results by URL. A URL is user input, so every
hop is checked before a connection is made:

* only ``http``/``https``; plain ``http`` only for explicitly trusted hosts;
* the host must be the Discord CDN, a provider's result host, or a trusted host
  (``KONTEXT_MEDIA_HOSTS``); ``.example.com`` allows that domain and its subdomains;
* the host's addresses (IP literals directly, names via ``getaddrinfo``) must be public:
  loopback, private, link-local (cloud metadata) and reserved ranges are refused unless the
  host is trusted;
* redirects are followed by hand (at most :data:`MAX_REDIRECTS`), each one checked again;
* the body is capped while it streams, and refused at once when ``Content-Length`` says it
  is too big; one deadline covers the whole download, redirects included.

Residual risk, accepted: the address is checked by our own lookup and httpx looks the name up
again to connect, so a hostile DNS server for an allowed host could answer differently the
second time. Allowed hosts are the Discord CDN and providers, not arbitrary names.

Signed URLs carry credentials in their query strings, so logs show scheme, host and path only.
The caller owns the ``httpx.AsyncClient``; it must not carry provider credentials in its
default headers, since requests may go to any allowed host.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
from collections.abc import Iterable
from typing import Final, Protocol

import httpx

from bot.config import Settings
from bot.errors import ReasonedError
from bot.i18n import Text, t

log = logging.getLogger(__name__)

DISCORD_CDN_HOSTS: Final = ("cdn.discordapp.com", "media.discordapp.net")
MAX_REDIRECTS: Final = 5
DEFAULT_MAX_BYTES: Final = 25 * 1024 * 1024
_REDIRECTS: Final = frozenset({301, 302, 303, 307, 308})


class DownloadRefused(ReasonedError, code="download_refused"):
    """We will not download this URL (checked before connecting). ``reason`` says why."""


class DownloadFailed(ReasonedError, code="download_failed"):
    """The download was attempted and did not work; ``status`` is the HTTP status, if any."""

    def __init__(self, reason: str, message: Text | str, *, status: int | None = None) -> None:
        super().__init__(reason, message)
        self.status = status


def _normalise_host(host: str) -> str:
    host = host.strip().lower().rstrip(".")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host


def _matches(host: str, patterns: frozenset[str]) -> bool:
    if host in patterns:
        return True
    return any(p.startswith(".") and (host == p[1:] or host.endswith(p)) for p in patterns)


def _ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return None


_IPV4_COMPATIBLE: Final = ipaddress.IPv6Network("::/96")  # deprecated ::a.b.c.d
_IPV4_TRANSLATED: Final = ipaddress.IPv6Network("::ffff:0:0:0/96")  # SIIT ::ffff:0:a.b.c.d
_NAT64: Final = ipaddress.IPv6Network("64:ff9b::/96")  # the well-known NAT64 prefix
_NAT64_LOCAL: Final = ipaddress.IPv6Network("64:ff9b:1::/48")  # local-use NAT64 prefixes
_ISATAP_ID: Final = 0x5EFE  # interface id [0|2]00:5efe:a.b.c.d, under any prefix


def _low_ipv4(addr: ipaddress.IPv6Address) -> ipaddress.IPv4Address:
    return ipaddress.IPv4Address(int(addr) & 0xFFFFFFFF)


def _stands_for_ipv4(addr: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address is only another spelling of (a connection to it
    reaches that IPv4 host), or ``None``."""
    if addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    if addr.sixtofour is not None:
        return addr.sixtofour
    if addr in _IPV4_COMPATIBLE or addr in _IPV4_TRANSLATED or addr in _NAT64:
        return _low_ipv4(addr)
    return None


def _tunnelled_ipv4(addr: ipaddress.IPv6Address) -> tuple[ipaddress.IPv4Address, ...]:
    """IPv4 addresses a tunnel address carries (Teredo server and client, ISATAP router)."""
    if addr.teredo is not None:
        return addr.teredo
    if (int(addr) >> 32) & 0xFCFFFFFF == _ISATAP_ID:
        return (_low_ipv4(addr),)
    return ()


def _is_public(addr: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Globally routable unicast. An IPv6 address that embeds an IPv4 address (mapped,
    compatible, translated, 6to4, NAT64) is judged as that IPv4 address; a tunnel address
    (Teredo, ISATAP) must be public itself and so must every IPv4 address inside it."""
    if isinstance(addr, ipaddress.IPv6Address):
        inner = _stands_for_ipv4(addr)
        if inner is not None:
            addr = inner
        elif addr in _NAT64_LOCAL:
            return False  # where the IPv4 address sits depends on the local prefix length
        elif not all(_is_public(v4) for v4 in _tunnelled_ipv4(addr)):
            return False
    return addr.is_global and not addr.is_multicast


def safe_url(url: httpx.URL | str) -> str:
    """``scheme://host[:port]/path`` without the query string (signed URLs carry secrets)."""
    try:
        parsed = url if isinstance(url, httpx.URL) else httpx.URL(url)
    except (httpx.InvalidURL, TypeError):
        return "<invalid url>"
    port = f":{parsed.port}" if parsed.port is not None else ""
    return f"{parsed.scheme}://{parsed.host}{port}{parsed.path}"


class Downloader(Protocol):
    """What generating and the engine need to fetch a result URL (:class:`MediaFetcher`)."""

    async def fetch(self, url: str, *, max_bytes: int | None = None) -> bytes: ...


class MediaFetcher:
    """Fetches images by URL from allowed hosts only (see the module docstring)."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        allowed_hosts: Iterable[str] = (),
        trusted_hosts: Iterable[str] = (),
        max_bytes: int = DEFAULT_MAX_BYTES,
        timeout: float = 30.0,
    ) -> None:
        self._client = client
        self._trusted = frozenset(_normalise_host(h) for h in trusted_hosts if h.strip())
        self._allowed = (
            frozenset(_normalise_host(h) for h in (*DISCORD_CDN_HOSTS, *allowed_hosts) if h.strip())
            | self._trusted
        )
        self._max_bytes = max_bytes
        self._timeout = timeout

    @classmethod
    def from_settings(
        cls, client: httpx.AsyncClient, settings: Settings, provider_hosts: Iterable[str]
    ) -> MediaFetcher:
        """Provider result hosts are allowed; ``KONTEXT_MEDIA_HOSTS`` are trusted."""
        return cls(client, allowed_hosts=provider_hosts, trusted_hosts=settings.media_hosts)

    # ------------------------------------------------------------------ checks

    def is_allowed(self, url: str) -> bool:
        """Whether ``url`` passes the syntactic checks (scheme, host, literal address)."""
        try:
            self._check_url(url)
        except DownloadRefused:
            return False
        return True

    def _check_url(self, url: str | httpx.URL) -> tuple[httpx.URL, bool]:
        """Parse and check ``url`` without any I/O; returns it and whether its host is trusted."""
        try:
            parsed = url if isinstance(url, httpx.URL) else httpx.URL(url)
        except (httpx.InvalidURL, TypeError) as err:
            raise DownloadRefused("bad_url", t("errors.download.bad_url")) from err
        if parsed.scheme not in ("http", "https"):
            raise DownloadRefused(
                "bad_scheme",
                t("errors.download.bad_scheme", scheme=parsed.scheme)
                if parsed.scheme
                else t("errors.download.no_scheme"),
            )
        host = _normalise_host(parsed.host)
        if not host:
            raise DownloadRefused("bad_url", t("errors.download.no_host"))
        if not _matches(host, self._allowed):
            raise DownloadRefused(
                "host_not_allowed",
                t("errors.download.host_not_allowed", host=host),
            )
        trusted = _matches(host, self._trusted)
        literal = _ip(host)
        if literal is not None and not trusted and not _is_public(literal):
            raise self._private(host)
        if parsed.scheme != "https" and not trusted:
            raise DownloadRefused(
                "insecure_scheme",
                t("errors.download.insecure_scheme"),
            )
        return parsed, trusted

    @staticmethod
    def _private(host: str) -> DownloadRefused:
        return DownloadRefused(
            "private_address",
            t("errors.download.private_address", host=host),
        )

    async def _check_addresses(self, url: httpx.URL) -> None:
        """Resolve a host name and refuse it if any of its addresses is not public."""
        host = _normalise_host(url.host)
        if _ip(host) is not None:
            return  # literals were checked in _check_url
        port = url.port or (443 if url.scheme == "https" else 80)
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError) as err:
            raise DownloadFailed(
                "connection",
                t("errors.download.unknown_host", host=host),
            ) from err
        for *_, sockaddr in infos:
            addr = _ip(str(sockaddr[0]))
            if addr is None or not _is_public(addr):
                raise self._private(host)

    # ------------------------------------------------------------------ fetching

    async def fetch(self, url: str, *, max_bytes: int | None = None) -> bytes:
        """The body of ``url``, following checked redirects; at most ``max_bytes`` bytes."""
        cap = self._max_bytes if max_bytes is None else max_bytes
        try:
            async with asyncio.timeout(self._timeout):
                return await self._fetch(url, cap)
        except DownloadRefused as err:
            log.info("download refused (%s): %s", err.reason, safe_url(url))
            raise
        except TimeoutError as err:
            log.info("download timed out: %s", safe_url(url))
            raise DownloadFailed(
                "timeout",
                t("errors.download.timeout", seconds=f"{self._timeout:g}"),
            ) from err

    async def _fetch(self, url: str, cap: int) -> bytes:
        current: str | httpx.URL = url
        for _hop in range(MAX_REDIRECTS + 1):
            parsed, trusted = self._check_url(current)
            if not trusted:
                await self._check_addresses(parsed)
            location = await self._get(parsed, cap)
            if isinstance(location, bytes):
                return location
            log.debug("redirect %s -> %s", safe_url(parsed), safe_url(location))
            current = location
        raise DownloadRefused(
            "too_many_redirects",
            t("errors.download.too_many_redirects", count=MAX_REDIRECTS),
        )

    async def _get(self, url: httpx.URL, cap: int) -> bytes | httpx.URL:
        """One request: the body, or the URL a redirect points to."""
        try:
            async with self._client.stream(
                "GET",
                url,
                headers={"Accept-Encoding": "identity"},
                follow_redirects=False,
                timeout=self._timeout,
            ) as response:
                if response.status_code in _REDIRECTS and "location" in response.headers:
                    return _redirect_target(url, response.headers["location"])
                if response.status_code >= 400:
                    raise _status_error(response.status_code, url)
                return await _read_capped(response, cap)
        except httpx.TimeoutException as err:
            raise TimeoutError from err
        except (httpx.HTTPError, httpx.StreamError, httpx.InvalidURL) as err:
            log.info("download failed: %s: %s", safe_url(url), type(err).__name__)
            raise DownloadFailed(
                "connection",
                t("errors.download.connection", host=url.host),
            ) from err


def _redirect_target(url: httpx.URL, location: str) -> httpx.URL:
    try:
        return url.join(location)
    except httpx.InvalidURL as err:
        raise DownloadRefused("bad_url", t("errors.download.bad_redirect")) from err


async def _read_capped(response: httpx.Response, cap: int) -> bytes:
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > cap:
        raise _too_large(cap)
    body = bytearray()
    async for chunk in response.aiter_bytes():
        body += chunk
        if len(body) > cap:
            raise _too_large(cap)
    return bytes(body)


def _human_size(size: int) -> Text | str:
    if size >= 1024 * 1024:
        return f"{size / (1024 * 1024):.1f} MiB"
    if size >= 1024:
        return f"{size / 1024:.1f} KiB"
    return t("errors.download.bytes", count=size)


def _too_large(cap: int) -> DownloadFailed:
    return DownloadFailed(
        "too_large",
        t("errors.download.too_large", size=_human_size(cap)),
    )


def _status_error(status: int, url: httpx.URL) -> DownloadFailed:
    log.info("download got HTTP %d: %s", status, safe_url(url))
    if status in (403, 404, 410):
        message = t("errors.download.gone", status=status)
    elif status == 429:
        message = t("errors.download.rate_limited", status=status)
    elif status >= 500:
        message = t("errors.download.host_error", status=status)
    else:
        message = t("errors.download.http_status", status=status)
    return DownloadFailed("http_status", message, status=status)


_RESULT_PROBLEMS: Final = {
    "private_address": t("errors.download.result.private_address"),
    "too_large": t("errors.download.result.too_large"),
    "timeout": t("errors.download.result.timeout"),
    "connection": t("errors.download.result.connection"),
}


def result_problem(err: DownloadRefused | DownloadFailed) -> Text:
    """Why a provider's result could not be fetched, worded for the requester (the errors'
    own messages speak about links a person posted)."""
    if isinstance(err, DownloadFailed) and err.status is not None:
        return t("errors.download.result.http_status", status=err.status)
    return _RESULT_PROBLEMS.get(err.reason, t("errors.download.result.refused"))


def worth_retrying(err: DownloadRefused | DownloadFailed) -> bool:
    """Whether fetching the same URL again may work: not after a refusal, an oversized body
    or a status that says the link is wrong."""
    if isinstance(err, DownloadRefused) or err.reason == "too_large":
        return False
    return err.status is None or err.status >= 500 or err.status in (408, 429)
