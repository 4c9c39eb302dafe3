"""bot.media against a local aiohttp server on 127.0.0.1 that logs every request it gets."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field

import httpx
import pytest
from aiohttp import web

from bot.config import Settings
from bot.errors import KontextError
from bot.media import (
    DISCORD_CDN_HOSTS,
    MAX_REDIRECTS,
    DownloadFailed,
    DownloadRefused,
    MediaFetcher,
    _is_public,
    safe_url,
)
from tests import imagecorpus as corpus

IMAGE = corpus.make_png(20, 10)
CAP = 4096


@dataclass
class FakeMediaServer:
    """The far end of a download: serves images, redirects, errors and stalls."""

    port: int = 0
    requests: list[tuple[str, str]] = field(default_factory=list)  # (Host header, path+query)
    release: asyncio.Event = field(default_factory=asyncio.Event)

    def url(self, path: str, host: str = "127.0.0.1", scheme: str = "http") -> str:
        return f"{scheme}://{host}:{self.port}{path}"

    @web.middleware
    async def log_requests(
        self,
        request: web.Request,
        handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
    ) -> web.StreamResponse:
        self.requests.append((request.host, request.path_qs))
        return await handler(request)

    async def image(self, request: web.Request) -> web.Response:
        return web.Response(body=IMAGE, content_type="image/png")

    async def redirect(self, request: web.Request) -> web.Response:
        """``/redirect/N`` → N relative hops, then the image."""
        hops = int(request.match_info["hops"])
        target = "/image.png" if hops == 0 else f"/redirect/{hops - 1}"
        raise web.HTTPFound(target)

    async def redirect_to(self, request: web.Request) -> web.Response:
        raise web.HTTPFound(request.query["url"])

    async def status(self, request: web.Request) -> web.Response:
        return web.Response(status=int(request.match_info["code"]), text="nope")

    async def huge_declared(self, request: web.Request) -> web.StreamResponse:
        """Declares a gigabyte, sends a little, then stalls: only an early refusal finishes."""
        response = web.StreamResponse()
        response.content_length = 10**9
        await response.prepare(request)
        await response.write(b"x" * 10)
        await self.release.wait()
        return response

    async def endless_chunked(self, request: web.Request) -> web.StreamResponse:
        """No Content-Length: sends more than CAP, then stalls without ending the body."""
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        await response.prepare(request)
        for _ in range(8):
            await response.write(b"y" * (CAP // 4))
        await self.release.wait()
        return response

    async def stall(self, request: web.Request) -> web.Response:
        await self.release.wait()
        return web.Response(body=IMAGE)


@pytest.fixture
async def server() -> AsyncIterator[FakeMediaServer]:
    fake = FakeMediaServer()
    app = web.Application(middlewares=[fake.log_requests])
    app.router.add_get("/image.png", fake.image)
    app.router.add_get("/redirect/{hops}", fake.redirect)
    app.router.add_get("/redirect-to", fake.redirect_to)
    app.router.add_get("/status/{code}", fake.status)
    app.router.add_get("/huge", fake.huge_declared)
    app.router.add_get("/endless", fake.endless_chunked)
    app.router.add_get("/stall", fake.stall)
    runner = web.AppRunner(app, shutdown_timeout=1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    fake.port = runner.addresses[0][1]
    yield fake
    fake.release.set()
    await runner.cleanup()


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as http:
        yield http


@pytest.fixture
def no_network() -> Iterator[tuple[httpx.AsyncClient, list[httpx.Request]]]:
    """A client whose transport records requests: any entry means a connection was made."""
    sent: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(200, content=IMAGE)

    yield httpx.AsyncClient(transport=httpx.MockTransport(handler)), sent


async def refused(fetcher: MediaFetcher, url: str, reason: str) -> DownloadRefused:
    with pytest.raises(DownloadRefused) as info:
        await fetcher.fetch(url)
    err = info.value
    assert isinstance(err, KontextError) and err.code == "download_refused"
    assert err.reason == reason, err.user_message
    return err


async def failed(fetcher: MediaFetcher, url: str, reason: str, **kw: int) -> DownloadFailed:
    with pytest.raises(DownloadFailed) as info:
        await fetcher.fetch(url, **kw)
    err = info.value
    assert isinstance(err, KontextError) and err.code == "download_failed"
    assert err.reason == reason, err.user_message
    return err


# --------------------------------------------------------------------------- allowed hosts


async def test_trusted_host_download(server: FakeMediaServer, client: httpx.AsyncClient) -> None:
    fetcher = MediaFetcher(client, trusted_hosts=["127.0.0.1"])
    assert await fetcher.fetch(server.url("/image.png")) == IMAGE
    assert server.requests == [(f"127.0.0.1:{server.port}", "/image.png")]


async def test_unlisted_host_is_refused_before_any_request(
    server: FakeMediaServer, client: httpx.AsyncClient
) -> None:
    fetcher = MediaFetcher(client, allowed_hosts=["files.example.com"])
    err = await refused(fetcher, server.url("/image.png"), "host_not_allowed")
    assert "127.0.0.1 isn't one of them" in err.user_message
    assert "Attach the image" in err.user_message
    assert server.requests == []


async def test_loopback_literal_is_refused_unless_trusted(
    server: FakeMediaServer, client: httpx.AsyncClient
) -> None:
    listed = MediaFetcher(client, allowed_hosts=["127.0.0.1"])
    for scheme in ("http", "https"):
        err = await refused(listed, server.url("/image.png", scheme=scheme), "private_address")
        assert "private network address (127.0.0.1)" in err.user_message
    assert server.requests == []
    trusted = MediaFetcher(client, trusted_hosts=["127.0.0.1"])
    assert await trusted.fetch(server.url("/image.png")) == IMAGE


async def test_name_resolving_to_loopback_is_refused_unless_trusted(
    server: FakeMediaServer, client: httpx.AsyncClient
) -> None:
    listed = MediaFetcher(client, allowed_hosts=["localhost"])
    assert listed.is_allowed(server.url("/image.png", "localhost", "https"))  # syntax is fine
    await refused(listed, server.url("/image.png", "localhost", "https"), "private_address")
    assert server.requests == []
    trusted = MediaFetcher(client, trusted_hosts=["LOCALHOST"])
    assert await trusted.fetch(server.url("/image.png", "localhost")) == IMAGE
    assert len(server.requests) == 1


def test_embedded_public_ipv4_is_judged_by_the_address_inside() -> None:
    public = ["::8.8.8.8", "::ffff:8.8.8.8", "64:ff9b::808:808", "2002:808:808::1"]
    assert all(_is_public(ipaddress.ip_address(a)) for a in public)
    assert _is_public(ipaddress.ip_address("2606:4700::5efe:808:808"))
    assert not _is_public(ipaddress.ip_address("2606:4700::5efe:a00:1"))


@pytest.mark.parametrize(
    "url",
    [
        "https://10.0.0.1/a.png",
        "https://169.254.169.254/latest/meta-data/",
        "https://[::1]/a.png",
        "https://[::ffff:127.0.0.1]/a.png",
        "https://0.0.0.0/a.png",
        "https://[64:ff9b::a9fe:a9fe]/latest/meta-data/",  # NAT64 form of 169.254.169.254
        "https://[2002:a00:1::]/a.png",  # 6to4 form of 10.0.0.1
        "https://100.64.0.1/a.png",  # carrier-grade NAT
        "https://[::127.0.0.1]/a.png",  # IPv4-compatible loopback
        "https://[::a9fe:a9fe]/latest/meta-data/",  # IPv4-compatible 169.254.169.254
        "https://[::c0a8:101]/a.png",  # IPv4-compatible 192.168.1.1
        "https://[::ffff:0:a00:1]/a.png",  # IPv4-translated 10.0.0.1
        "https://[::ffff:7f00:1]/a.png",  # IPv4-mapped loopback, hex spelling
        "https://[64:ff9b::127.0.0.1]/a.png",  # NAT64, dotted spelling
        "https://[64:ff9b:1:7f00:0:100::]/a.png",  # local-use NAT64
        "https://[2001:0:7f00:1::1]/a.png",  # Teredo with a loopback server
        "https://[2606:4700::5efe:7f00:1]/a.png",  # ISATAP around 127.0.0.1
        "https://[2606:4700::200:5efe:a00:1]/a.png",  # ISATAP (universal bit) around 10.0.0.1
    ],
)
async def test_private_literals_are_refused_without_connecting(
    url: str, no_network: tuple[httpx.AsyncClient, list[httpx.Request]]
) -> None:
    http, sent = no_network
    host = httpx.URL(url).host
    listed = MediaFetcher(http, allowed_hosts=[host])
    await refused(listed, url, "private_address")
    assert not listed.is_allowed(url)
    await refused(MediaFetcher(http), url, "host_not_allowed")
    assert sent == []


@pytest.mark.parametrize(
    "url",
    [
        "ftp://cdn.discordapp.com/a.png",
        "file:///etc/passwd",
        "data:image/png;base64,AAAA",
        "gopher://cdn.discordapp.com/",
    ],
)
async def test_non_http_schemes_are_refused(
    url: str, no_network: tuple[httpx.AsyncClient, list[httpx.Request]]
) -> None:
    http, sent = no_network
    await refused(MediaFetcher(http), url, "bad_scheme")
    assert sent == []


async def test_plain_http_needs_a_trusted_host(
    no_network: tuple[httpx.AsyncClient, list[httpx.Request]],
) -> None:
    http, sent = no_network
    err = await refused(MediaFetcher(http), "http://cdn.discordapp.com/a.png", "insecure_scheme")
    assert "https" in err.user_message
    assert sent == []


def test_is_allowed_host_patterns() -> None:
    fetcher = MediaFetcher(
        httpx.AsyncClient(), allowed_hosts=[".results.example", "d1.example.net"]
    )
    for host in DISCORD_CDN_HOSTS:
        assert fetcher.is_allowed(f"https://{host}/attachments/1/2/a.png?ex=1&hm=2")
    assert fetcher.is_allowed("https://CDN.DiscordApp.com./a.png")
    assert fetcher.is_allowed("https://results.example/x.png")
    assert fetcher.is_allowed("https://eu.cdn.results.example/x.png")
    assert fetcher.is_allowed("https://d1.example.net/x")
    assert not fetcher.is_allowed("https://evilresults.example/x.png")
    assert not fetcher.is_allowed("https://sub.d1.example.net/x")
    assert not fetcher.is_allowed("https://cdn.discordapp.com.evil.example/a.png")
    assert not fetcher.is_allowed("http://cdn.discordapp.com/a.png")
    assert not fetcher.is_allowed("not a url at all")
    assert not fetcher.is_allowed("https:///a.png")


def test_from_settings_trusts_media_hosts() -> None:
    settings = Settings(_env_file=None, media_hosts="127.0.0.1, Files.Internal")
    fetcher = MediaFetcher.from_settings(httpx.AsyncClient(), settings, ["img.provider.example"])
    assert fetcher.is_allowed("http://files.internal/a.png")  # trusted: http is fine
    assert fetcher.is_allowed("http://127.0.0.1:8080/a.png")
    assert fetcher.is_allowed("https://img.provider.example/a.png")
    assert not fetcher.is_allowed("http://img.provider.example/a.png")
    assert fetcher.is_allowed("https://media.discordapp.net/a.png")


# --------------------------------------------------------------------------- redirects


async def test_redirect_chain_within_allowed_hosts(
    server: FakeMediaServer, client: httpx.AsyncClient
) -> None:
    fetcher = MediaFetcher(client, trusted_hosts=["127.0.0.1", "localhost"])
    via_localhost = server.url("/redirect/2", "localhost")
    start = server.url(f"/redirect-to?url={via_localhost}")
    assert await fetcher.fetch(start) == IMAGE
    port = server.port
    assert server.requests == [
        (f"127.0.0.1:{port}", f"/redirect-to?url={via_localhost}"),
        (f"localhost:{port}", "/redirect/2"),
        (f"localhost:{port}", "/redirect/1"),
        (f"localhost:{port}", "/redirect/0"),
        (f"localhost:{port}", "/image.png"),
    ]


async def test_redirect_to_a_host_not_allowed_is_refused(server: FakeMediaServer) -> None:
    # Even a client configured to follow redirects itself must not bypass the checks.
    async with httpx.AsyncClient(follow_redirects=True) as http:
        fetcher = MediaFetcher(http, trusted_hosts=["127.0.0.1"])
        for target in ("https://evil.example/x.png", server.url("/image.png", "localhost")):
            await refused(fetcher, server.url(f"/redirect-to?url={target}"), "host_not_allowed")
    assert [path for _, path in server.requests] == [
        "/redirect-to?url=https://evil.example/x.png",
        f"/redirect-to?url=http://localhost:{server.port}/image.png",
    ]


async def test_redirect_to_a_private_address_is_refused(
    server: FakeMediaServer, client: httpx.AsyncClient
) -> None:
    fetcher = MediaFetcher(client, allowed_hosts=["169.254.169.254"], trusted_hosts=["127.0.0.1"])
    target = "https://169.254.169.254/latest/meta-data/"
    await refused(fetcher, server.url(f"/redirect-to?url={target}"), "private_address")
    assert len(server.requests) == 1


async def test_too_many_redirects(server: FakeMediaServer, client: httpx.AsyncClient) -> None:
    fetcher = MediaFetcher(client, trusted_hosts=["127.0.0.1"])
    assert await fetcher.fetch(server.url(f"/redirect/{MAX_REDIRECTS - 1}")) == IMAGE
    server.requests.clear()
    err = await refused(fetcher, server.url(f"/redirect/{MAX_REDIRECTS}"), "too_many_redirects")
    assert f"more than {MAX_REDIRECTS} times" in err.user_message
    assert len(server.requests) == MAX_REDIRECTS + 1
    assert server.requests[-1][1] == "/redirect/0"  # the image itself was never requested


# --------------------------------------------------------------------------- size, status, time


async def test_content_length_over_the_cap_is_refused_at_once(
    server: FakeMediaServer, client: httpx.AsyncClient
) -> None:
    # The server stalls after 10 bytes: reading the body would end in a timeout instead.
    fetcher = MediaFetcher(client, trusted_hosts=["127.0.0.1"], max_bytes=CAP, timeout=30)
    err = await failed(fetcher, server.url("/huge"), "too_large")
    assert err.user_message == (
        "That file is larger than 4.0 KiB, the most I download. Use a smaller image."
    )
    assert err.status is None
    default = MediaFetcher(client, trusted_hosts=["127.0.0.1"])
    assert (
        "larger than 25.0 MiB"
        in (await failed(default, server.url("/huge"), "too_large")).user_message
    )


async def test_chunked_body_over_the_cap_is_stopped_while_streaming(
    server: FakeMediaServer, client: httpx.AsyncClient
) -> None:
    # The body never ends: only stopping at the cap lets the fetch finish.
    fetcher = MediaFetcher(client, trusted_hosts=["127.0.0.1"], timeout=30)
    await failed(fetcher, server.url("/endless"), "too_large", max_bytes=CAP)


async def test_per_call_cap_overrides_the_default(
    server: FakeMediaServer, client: httpx.AsyncClient
) -> None:
    fetcher = MediaFetcher(client, trusted_hosts=["127.0.0.1"], max_bytes=10)
    await failed(fetcher, server.url("/image.png"), "too_large")
    assert await fetcher.fetch(server.url("/image.png"), max_bytes=len(IMAGE)) == IMAGE


@pytest.mark.parametrize("code", [403, 404, 410])
async def test_expired_links(code: int, server: FakeMediaServer, client: httpx.AsyncClient) -> None:
    fetcher = MediaFetcher(client, trusted_hosts=["127.0.0.1"])
    err = await failed(fetcher, server.url(f"/status/{code}"), "http_status")
    assert err.status == code
    assert f"HTTP {code}" in err.user_message
    assert "expired" in err.user_message and "post the image again" in err.user_message


@pytest.mark.parametrize(("code", "words"), [(500, "had an error"), (400, "Check the link")])
async def test_other_statuses(
    code: int, words: str, server: FakeMediaServer, client: httpx.AsyncClient
) -> None:
    fetcher = MediaFetcher(client, trusted_hosts=["127.0.0.1"])
    err = await failed(fetcher, server.url(f"/status/{code}"), "http_status")
    assert err.status == code and words in err.user_message


async def test_a_stalled_server_times_out(
    server: FakeMediaServer, client: httpx.AsyncClient
) -> None:
    fetcher = MediaFetcher(client, trusted_hosts=["127.0.0.1"], timeout=0.05)
    err = await failed(fetcher, server.url("/stall"), "timeout")
    assert "longer than 0.05 s" in err.user_message
    assert server.requests == [(f"127.0.0.1:{server.port}", "/stall")]


async def test_connection_refused(client: httpx.AsyncClient) -> None:
    with socket.socket() as closed:  # bound but not listening: connections are refused
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
        fetcher = MediaFetcher(client, trusted_hosts=["127.0.0.1"])
        err = await failed(fetcher, f"http://127.0.0.1:{port}/a.png", "connection")
    assert "couldn't download" in err.user_message


async def test_unresolvable_host(client: httpx.AsyncClient) -> None:
    fetcher = MediaFetcher(client, allowed_hosts=["no-such-host.invalid"])
    err = await failed(fetcher, "https://no-such-host.invalid/a.png", "connection")
    assert "no-such-host.invalid" in err.user_message


# --------------------------------------------------------------------------- logging


async def test_query_strings_are_never_logged(
    server: FakeMediaServer, client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="bot.media")
    fetcher = MediaFetcher(client, trusted_hosts=["127.0.0.1"])
    signed = server.url("/redirect/1?ex=abc&hm=SIGNATURE123")
    assert await fetcher.fetch(signed) == IMAGE
    await failed(fetcher, server.url("/status/404?hm=SIGNATURE456"), "http_status")
    assert "/redirect/1" in caplog.text and "/status/404" in caplog.text
    assert "SIGNATURE" not in caplog.text
    assert safe_url("https://cdn.discordapp.com/a/b.png?ex=1&hm=2") == (
        "https://cdn.discordapp.com/a/b.png"
    )
