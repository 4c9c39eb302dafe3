"""A local stand-in for cdn.discordapp.com: attachment bytes behind signed, expiring URLs.

Discord signs attachment URLs: ``?ex=<hex expiry epoch>&is=<hex issue epoch>&hm=<hmac>``.
An expired URL answers 404 ("This content is no longer available."), a tampered one 403.
Every render of a message (gateway event or REST answer) signs its URLs afresh, so fetching
a message again gives a fresh URL, as with Discord.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from urllib.parse import quote

from aiohttp import web

from .models import FakeClock

DEFAULT_URL_TTL = 24 * 3600.0


@dataclass
class Blob:
    channel_id: int
    attachment_id: int
    filename: str
    data: bytes
    content_type: str | None


class FakeCDN:
    """Stores attachment bytes and signs/verifies their URLs against the fake clock."""

    def __init__(self, clock: FakeClock, *, url_ttl: float = DEFAULT_URL_TTL) -> None:
        self.clock = clock
        self.url_ttl = url_ttl
        self.base_url = ""  # set by the server once it knows its port
        self._key = secrets.token_bytes(32)
        self._blobs: dict[int, Blob] = {}
        self.downloads: list[str] = []

    def put(self, blob: Blob) -> None:
        self._blobs[blob.attachment_id] = blob

    def get(self, attachment_id: int) -> Blob:
        return self._blobs[attachment_id]

    def _path(self, blob: Blob) -> str:
        name = quote(blob.filename, safe="")
        return f"/attachments/{blob.channel_id}/{blob.attachment_id}/{name}"

    def _mac(self, path: str, ex: str, is_: str) -> str:
        message = f"{path}|{ex}|{is_}".encode()
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()

    def url(self, attachment_id: int, *, ttl: float | None = None) -> str:
        """A freshly signed URL for an attachment, valid for ``ttl`` (default ``url_ttl``)."""
        blob = self._blobs[attachment_id]
        now = int(self.clock.time())
        ex = format(now + int(self.url_ttl if ttl is None else ttl), "x")
        is_ = format(now, "x")
        path = self._path(blob)
        return f"{self.base_url}{path}?ex={ex}&is={is_}&hm={self._mac(path, ex, is_)}&"

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """``GET /attachments/{channel_id}/{attachment_id}/{filename}``."""
        path = request.rel_url.raw_path
        ex, is_, hm = (request.query.get(k, "") for k in ("ex", "is", "hm"))
        try:
            blob = self._blobs[int(request.match_info["attachment_id"])]
        except (KeyError, ValueError):
            return web.Response(status=404, text="Not Found")
        if not hmac.compare_digest(self._mac(self._path(blob), ex, is_), hm) or path != self._path(
            blob
        ):
            return web.Response(status=403, text="Forbidden")
        if int(ex, 16) <= self.clock.time():
            return web.Response(status=404, text="This content is no longer available.")
        self.downloads.append(str(request.rel_url))
        return web.Response(
            body=blob.data, content_type=blob.content_type or "application/octet-stream"
        )
