"""The scriptable fake-provider server that the three provider fakes build on.

A fake is an aiohttp app on 127.0.0.1 (ephemeral port) that follows the provider's docs,
validates every request body against the published schema, and answers from a per-endpoint
queue of scripted :class:`Outcome` values (a default outcome when the queue is empty).
Result images are real PNG/JPEG bytes made with Pillow and served from the fake's own
``/cdn/...`` route. Schema violations are recorded and fail the test at teardown
(:meth:`FakeProvider.assert_clean`), after the fake has answered the way the provider would.

Fault injection: besides error statuses, an outcome can hold the answer (``stall``), trickle
it a byte at a time (``trickle``, paced on the injected clock), stream an endless or oversized
body (``huge``), answer an HTML error page (``html``), break the connection (``drop``) or
point the result at another URL (``result_url``). While requests are held, :attr:`holding`
counts them and :attr:`hold_until` says when the fake next wants time to pass (``None``:
never), so a test can move a manual clock exactly when the fake, not the client, is the one
waiting. A handler is cancelled when its client hangs up, so a held request the client gave
up on stops counting.

Usage::

    async with AimlApiFake(docs=require_docs()) as fake:
        fake.script("submit", Outcome.http(401))
        settings = Settings(_env_file=None, aimlapi_base_url=fake.base_url, ...)
        ...
        assert fake.count("submit") == 1
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import io
import itertools
import json
from collections import defaultdict, deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, Self

from aiohttp import web
from jsonschema.protocols import Validator
from PIL import Image

from bot.clock import Clock
from tests.fakes.schemas import violations as schema_violations


class Kind(Enum):
    SUCCESS = "success"  # the finished result
    PROCESSING = "processing"  # pending for ``polls`` polls, then ``then``
    FAILED = "failed"  # an error reported inside HTTP 200
    HTTP = "http"  # an HTTP error status with the provider's error body
    STALL = "stall"  # hold the answer until released, then answer ``then``
    MALFORMED = "malformed"  # HTTP 200 with a body that is not JSON
    DROP = "drop"  # close the connection without answering
    NOT_IMAGE = "not_image"  # CDN only: bytes that are not an image
    TRICKLE = "trickle"  # HTTP 200, then one byte every ``interval`` seconds, forever
    HUGE = "huge"  # HTTP 200, a valid but ``size``-byte body streamed without a length
    HTML = "html"  # an HTML error page with ``status`` (a proxy in front of the provider)


@dataclass(frozen=True)
class Outcome:
    """One scripted answer. Build with the class methods."""

    kind: Kind
    status: int = 200
    message: str | None = None
    retry_after: float | None = None
    retry_after_in: str = "header"  # "header" | "body" | "both"
    polls: int = 0
    then: Outcome | None = None
    nsfw: tuple[bool, ...] | None = None  # per output; None: none flagged
    shape: str = "images"  # AIML: "images" (examples) or "data" (schema)
    b64: bool = False  # AIML "data" shape: b64_json instead of url
    credits: float | None = None  # AIML "data" shape: meta.usage.credits_used
    release: asyncio.Event | None = field(default=None, compare=False)
    numbers_as_strings: bool = False  # ModelsLab: send numbers as strings
    legacy_typo: bool = False  # ModelsLab: the error text under ``messege``
    result_url: str | None = None  # every output points here instead of the fake's CDN
    interval: float = 5.0  # trickle: seconds between bytes
    size: int = 32 * 1024 * 1024  # huge: bytes in the body

    @classmethod
    def success(cls, **options: Any) -> Outcome:
        return cls(Kind.SUCCESS, **options)

    @classmethod
    def nsfw_flags(cls, *flags: bool, **options: Any) -> Outcome:
        """A result whose outputs carry these NSFW flags (all True: moderated)."""
        return cls(Kind.SUCCESS, nsfw=tuple(flags), **options)

    @classmethod
    def processing(cls, polls: int = 1, then: Outcome | None = None) -> Outcome:
        return cls(Kind.PROCESSING, polls=polls, then=then)

    @classmethod
    def failed(cls, message: str = "Something went wrong", **options: Any) -> Outcome:
        return cls(Kind.FAILED, message=message, **options)

    @classmethod
    def http(cls, status: int, message: str | None = None, **options: Any) -> Outcome:
        return cls(Kind.HTTP, status=status, message=message, **options)

    @classmethod
    def rate_limited(
        cls, retry_after: float | None = 3, *, where: str = "header", message: str | None = None
    ) -> Outcome:
        return cls(
            Kind.HTTP, status=429, retry_after=retry_after, retry_after_in=where, message=message
        )

    @classmethod
    def stall(cls, then: Outcome | None = None) -> Outcome:
        """Hold the answer until :meth:`FakeProvider.release` (never a sleep)."""
        return cls(Kind.STALL, then=then, release=asyncio.Event())

    @classmethod
    def malformed(cls) -> Outcome:
        return cls(Kind.MALFORMED)

    @classmethod
    def drop(cls) -> Outcome:
        return cls(Kind.DROP)

    @classmethod
    def not_image(cls) -> Outcome:
        return cls(Kind.NOT_IMAGE)

    @classmethod
    def trickle(cls, interval: float = 5.0) -> Outcome:
        return cls(Kind.TRICKLE, interval=interval)

    @classmethod
    def huge(cls, size: int = 32 * 1024 * 1024) -> Outcome:
        return cls(Kind.HUGE, size=size)

    @classmethod
    def html(cls, status: int = 502) -> Outcome:
        return cls(Kind.HTML, status=status)


@dataclass
class Recorded:
    """One request the fake received."""

    endpoint: str  # "submit" | "poll" | "upload" | "cdn"
    method: str
    path: str
    body: Any
    auth_ok: bool
    violations: list[str]
    at: float | None = None  # the injected clock's monotonic time, when a clock was given


@dataclass
class Job:
    """An asynchronous job on the fake: pending for ``polls`` polls, then ``result``."""

    id: str
    polls: int
    result: Outcome
    size: tuple[int, int]
    fmt: str
    count: int


class FakeProvider:
    """Base class: the server, the scripting queues, the record and the CDN."""

    name = "fake"
    default_size = (1024, 1024)
    key_env: str | None = None  # the key's environment variable, if not <NAME>_API_KEY
    #: Result URLs stop working this many seconds (on the injected clock) after they were made.
    result_ttl: float | None = None
    expired_status = 404

    def __init__(
        self,
        *,
        docs: Path | None = None,
        api_key: str = "test-key-0123456789abcdef",
        clock: Clock | None = None,
    ) -> None:
        self.docs = docs
        self.clock = clock
        self.api_key = api_key
        self.requests: list[Recorded] = []
        self.violations: list[str] = []
        self.jobs: dict[str, Job] = {}
        self._queues: dict[str, deque[Outcome]] = defaultdict(deque)
        self._defaults: dict[str, Outcome] = {}
        self._files: dict[str, tuple[bytes, str]] = {}
        self._born: dict[str, float] = {}
        self._stalls: list[asyncio.Event] = []
        #: Requests being held right now (a stall, or a trickle between two bytes).
        self.holding = 0
        #: Clock time (``now()``) the last held request next wants, or None: never.
        self.hold_until: float | None = None
        self._ids = itertools.count(1000)
        self._runner: web.AppRunner | None = None
        self.port = 0
        self.app = web.Application(client_max_size=64 * 1024 * 1024)
        self.app.router.add_get("/cdn/{name}", self._cdn)
        self.routes(self.app.router)

    # -- lifecycle ----------------------------------------------------------------------

    async def start(self) -> Self:
        self._runner = web.AppRunner(
            self.app, access_log=None, shutdown_timeout=0, handler_cancellation=True
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]
        return self

    async def close(self) -> None:
        self.release()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def host(self) -> str:
        return "127.0.0.1"

    # -- scripting ----------------------------------------------------------------------

    def script(self, endpoint: str, *outcomes: Outcome) -> None:
        """Queue outcomes for ``endpoint`` ("submit", "poll", "upload" or "cdn")."""
        self._queues[endpoint].extend(outcomes)

    def set_default(self, endpoint: str, outcome: Outcome) -> None:
        """The outcome used when ``endpoint``'s queue is empty."""
        self._defaults[endpoint] = outcome

    def release(self) -> None:
        """Let every stalled request answer."""
        for event in self._stalls:
            event.set()

    def count(self, endpoint: str) -> int:
        return sum(1 for r in self.requests if r.endpoint == endpoint)

    @property
    def submits(self) -> int:
        return self.count("submit")

    @property
    def polls(self) -> int:
        return self.count("poll")

    def times(self, endpoint: str) -> list[float]:
        """When each request to ``endpoint`` arrived, on the injected clock."""
        return [r.at for r in self.requests if r.endpoint == endpoint and r.at is not None]

    def bodies(self, endpoint: str) -> list[Any]:
        return [r.body for r in self.requests if r.endpoint == endpoint]

    def assert_clean(self) -> None:
        """Fail when any request broke the published schema."""
        assert not self.violations, "requests broke the provider's schema:\n" + "\n".join(
            self.violations
        )

    # -- for subclasses -----------------------------------------------------------------

    def routes(self, router: web.UrlDispatcher) -> None:
        raise NotImplementedError

    def error_body(self, status: int, message: str, outcome: Outcome) -> dict[str, Any]:
        return {"message": message}

    def next_outcome(self, endpoint: str, fallback: Outcome) -> Outcome:
        queue = self._queues[endpoint]
        if queue:
            return queue.popleft()
        return self._defaults.get(endpoint, fallback)

    def record(
        self,
        request: web.Request,
        endpoint: str,
        body: Any,
        *,
        auth_ok: bool,
        check: Validator | None = None,
    ) -> Recorded:
        problems = schema_violations(check, body) if check is not None else []
        at = self.clock.monotonic() if self.clock is not None else None
        entry = Recorded(endpoint, request.method, request.path, body, auth_ok, problems, at)
        self.requests.append(entry)
        self.violations.extend(f"{request.method} {request.path}: {p}" for p in problems)
        return entry

    async def json_body(self, request: web.Request) -> Any:
        raw = await request.read()
        try:
            return json.loads(raw)
        except ValueError:
            self.violations.append(f"{request.method} {request.path}: body is not JSON")
            return None

    async def multipart_file(
        self, request: web.Request, field_name: str
    ) -> tuple[bytes | None, str]:
        """The bytes and content type of a multipart upload's ``field_name`` part."""
        data: bytes | None = None
        mime = "application/octet-stream"
        if request.content_type.startswith("multipart/"):
            reader = await request.multipart()
            async for part in reader:
                if getattr(part, "name", None) == field_name:
                    data = bytes(await part.read())  # type: ignore[union-attr]
                    mime = part.headers.get("Content-Type", mime)  # type: ignore[union-attr]
        return data, mime

    def bearer_ok(self, request: web.Request) -> bool:
        return request.headers.get("Authorization") == f"Bearer {self.api_key}"

    async def common(self, request: web.Request, outcome: Outcome) -> web.StreamResponse | Outcome:
        """Answer the outcomes every provider shares; return the outcome to render otherwise.

        A stall waits on its event, then continues with ``then`` (success by default).
        """
        while outcome.kind is Kind.STALL:
            assert outcome.release is not None
            self._stalls.append(outcome.release)
            with self._holding(None):
                await outcome.release.wait()
            outcome = outcome.then or Outcome.success()
        if outcome.kind is Kind.TRICKLE:
            return await self._trickle(request, outcome.interval)
        if outcome.kind is Kind.HUGE:
            return await self._huge(request, outcome.size, b'{"padding": "', b'"}')
        if outcome.kind is Kind.HTML:
            page = f"<html><body><h1>{outcome.status} {_REASONS.get(outcome.status, '')}</h1>"
            return web.Response(
                status=outcome.status, text=page + "</body></html>", content_type="text/html"
            )
        if outcome.kind is Kind.DROP:
            transport = request.transport
            assert transport is not None
            transport.abort()
            return web.Response(status=500)
        if outcome.kind is Kind.MALFORMED:
            return web.Response(
                status=200, text="<html>502 Bad Gateway</html>", content_type="application/json"
            )
        if outcome.kind is Kind.HTTP:
            message = outcome.message or _REASONS.get(outcome.status, "Error")
            body = self.error_body(outcome.status, message, outcome)
            headers = {}
            if outcome.retry_after is not None and outcome.retry_after_in in ("header", "both"):
                headers["Retry-After"] = f"{outcome.retry_after:g}"
            if outcome.retry_after is not None and outcome.retry_after_in in ("body", "both"):
                body["retry_after"] = outcome.retry_after
            return web.json_response(body, status=outcome.status, headers=headers)
        return outcome

    def new_id(self) -> str:
        return str(next(self._ids))

    @contextlib.contextmanager
    def _holding(self, until: float | None) -> Iterator[None]:
        self.holding += 1
        self.hold_until = until
        try:
            yield
        finally:
            self.holding -= 1

    async def _wait(self, seconds: float) -> None:
        if self.clock is None:
            await asyncio.sleep(seconds)
            return
        with self._holding(self.clock.now() + seconds):
            await self.clock.sleep(seconds)

    async def _trickle(self, request: web.Request, interval: float) -> web.StreamResponse:
        """Valid JSON that never ends: a byte of whitespace every ``interval`` seconds."""
        response = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
        await response.prepare(request)
        await response.write(b'{"status": "processing"')
        try:
            while True:
                await self._wait(interval)
                await response.write(b" ")
        except (ConnectionError, RuntimeError):
            return response  # the client gave up

    async def _huge(
        self, request: web.Request, size: int, head: bytes, tail: bytes
    ) -> web.StreamResponse:
        """A ``size``-byte body streamed without a Content-Length (chunked)."""
        response = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        chunk = b"x" * 65536
        sent = len(head) + len(tail)
        try:
            await response.write(head)
            while sent < size:
                part = chunk[: size - sent]
                await response.write(part)
                sent += len(part)
            await response.write(tail)
            await response.write_eof()
        except (ConnectionError, RuntimeError):
            pass  # the client stopped reading
        return response

    def result_urls(
        self, size: tuple[int, int], fmt: str, count: int, outcome: Outcome
    ) -> list[str]:
        """Where the outputs of ``outcome`` live: the scripted URL, or fresh CDN images."""
        if outcome.result_url is not None:
            return [outcome.result_url] * count
        return self.make_images(size, fmt, count)

    # -- the CDN ------------------------------------------------------------------------

    def make_images(self, size: tuple[int, int], fmt: str, count: int) -> list[str]:
        """Real images of ``size`` in ``fmt``; returns their CDN URLs."""
        urls = []
        for index in range(count):
            name = f"{self.new_id()}.{'jpg' if fmt == 'jpeg' else fmt}"
            self._files[name] = (render(size, fmt, index), f"image/{fmt}")
            if self.clock is not None:
                self._born[name] = self.clock.monotonic()
            urls.append(f"{self.base_url}/cdn/{name}")
        return urls

    def image_bytes(self, url: str) -> bytes:
        return self._files[url.rsplit("/", 1)[-1]][0]

    def reference_size(self, url: str) -> tuple[int, int]:
        """The output size a model keeping a reference's shape makes (long side 1024): the
        reference is read from this fake's CDN or from a ``data:`` URI, else 1024×1024."""
        if url.startswith("data:"):
            try:
                data: bytes | None = base64.b64decode(url.partition(",")[2])
            except ValueError:
                data = None
        else:
            found = (
                self._files.get(url.rsplit("/", 1)[-1]) if url.startswith(self.base_url) else None
            )
            data = found[0] if found else None
        if not data:
            return (1024, 1024)
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
        scale = 1024 / max(width, height)
        return (max(16, round(width * scale)), max(16, round(height * scale)))

    def store_upload(self, data: bytes, mime: str) -> str:
        name = f"upload-{self.new_id()}.{mime.split('/')[-1]}"
        self._files[name] = (data, mime)
        return f"{self.base_url}/cdn/{name}"

    async def _cdn(self, request: web.Request) -> web.StreamResponse:
        self.record(request, "cdn", None, auth_ok=True)
        outcome = self.next_outcome("cdn", Outcome.success())
        answer = await self.common(request, outcome)
        if isinstance(answer, web.StreamResponse):
            return answer
        if answer.kind is Kind.NOT_IMAGE:
            return web.Response(body=b"<html>not an image</html>", content_type="image/png")
        name = request.match_info["name"]
        found = self._files.get(name)
        born = self._born.get(name)
        ttl = self.result_ttl
        if ttl is not None and self.clock is not None and born is not None:
            expired = self.clock.monotonic() - born >= ttl
            if expired:
                return web.Response(status=self.expired_status, text="expired")
        if found is None:
            return web.Response(status=404, text="Not Found")
        return web.Response(body=found[0], content_type=found[1])


@functools.lru_cache(maxsize=64)
def render(size: tuple[int, int], fmt: str, index: int = 0) -> bytes:
    """A real, small-to-encode image: a flat colour per output index (encoded once per size,
    format and index: encoding a 1024-pixel PNG takes the fake's loop ~20 ms)."""
    colours = [(200, 60, 40), (40, 160, 90), (50, 80, 200), (220, 200, 60)]
    image = Image.new("RGB", size, colours[index % len(colours)])
    out = io.BytesIO()
    image.save(out, format="JPEG" if fmt in ("jpeg", "jpg") else fmt.upper())
    return out.getvalue()


def ratio_size(ratio: str | None, long_side: int = 1024) -> tuple[int, int]:
    """Pixel size for a ``W:H`` ratio with the long side ``long_side``."""
    if not ratio:
        return (long_side, long_side)
    width, height = (int(x) for x in ratio.split(":"))
    if width >= height:
        return (long_side, max(16, round(long_side * height / width)))
    return (max(16, round(long_side * width / height)), long_side)


_REASONS = {
    400: "Bad Request",
    401: "Unauthorized",
    402: "Payment Required",
    403: "Forbidden",
    404: "Not Found",
    408: "Request Timeout",
    409: "Conflict",
    422: "Unprocessable Entity",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}
