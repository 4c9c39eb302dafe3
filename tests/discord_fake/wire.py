"""HTTP plumbing shared by the fake's REST routes: errors, JSON answers, bodies, routing."""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import BodyPartReader, web

from .models import Json
from .world import FileUpload

if TYPE_CHECKING:
    from .server import FakeDiscord

# code -> (HTTP status, Discord's message)
ERRORS: dict[int, tuple[int, str]] = {
    0: (404, "404: Not Found"),
    10003: (404, "Unknown Channel"),
    10004: (404, "Unknown Guild"),
    10007: (404, "Unknown Member"),
    10008: (404, "Unknown Message"),
    10013: (404, "Unknown User"),
    10015: (404, "Unknown Webhook"),
    10062: (404, "Unknown interaction"),
    10063: (404, "Unknown application command"),
    40001: (401, "401: Unauthorized"),
    40005: (413, "Request entity too large"),
    40060: (400, "Interaction has already been acknowledged."),
    50001: (403, "Missing Access"),
    50005: (403, "Cannot edit a message authored by another user"),
    50006: (400, "Cannot send an empty message"),
    50024: (400, "Cannot execute action on this channel type"),
    50007: (403, "Cannot send messages to this user"),
    50013: (403, "Missing Permissions"),
    50027: (401, "Invalid Webhook Token"),
    50035: (400, "Invalid Form Body"),
    50109: (400, "The request body contains invalid JSON."),
    50083: (400, "Operation cannot be performed on an archived thread"),
    160004: (400, "A thread has already been created for this message"),
}


class DiscordError(Exception):
    """Raised by a route to answer as Discord does; recorded as a violation."""

    def __init__(self, code: int, errors: Json | None = None, *, detail: str = "") -> None:
        self.status, self.message = ERRORS[code]
        self.code = code
        self.errors = errors
        self.detail = detail
        super().__init__(f"{self.status} {code} {self.message} {detail}".strip())

    def body(self) -> Json:
        body: Json = {"message": self.message, "code": self.code}
        if self.errors:
            body["errors"] = self.errors
        return body


def json_response(
    data: Any, *, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    """JSON with ``Content-Type: application/json`` exactly (no charset), as Discord answers."""
    response = web.Response(body=json.dumps(data).encode(), status=status, headers=headers)
    response.headers["Content-Type"] = "application/json"
    return response


@dataclass
class RequestRecord:
    """One REST request the bot made, as the fake saw and answered it."""

    method: str
    path: str
    template: str | None
    query: dict[str, str]
    at: float
    body: Any = None
    files: list[FileUpload] = field(default_factory=list)
    status: int = 0
    response: Any = None

    def __repr__(self) -> str:
        return f"<{self.method} {self.path} -> {self.status}>"


@dataclass
class Violation:
    """A request real Discord would have rejected."""

    method: str
    path: str
    status: int
    code: int
    message: str
    errors: Json | None = None
    detail: str = ""

    def __str__(self) -> str:
        errors = f" errors={json.dumps(self.errors)}" if self.errors else ""
        detail = f" ({self.detail})" if self.detail else ""
        return (
            f"{self.method} {self.path}: {self.status} {self.code} {self.message}{detail}{errors}"
        )


@dataclass
class Call:
    """What a route handler receives."""

    request: web.Request
    params: dict[str, str]
    body: Any
    files: list[FileUpload]

    def int(self, name: str) -> int:
        try:
            return int(self.params[name])
        except ValueError:
            raise DiscordError(
                50035, {name: {"_errors": [{"code": "NUMBER_TYPE_COERCE"}]}}
            ) from None

    @property
    def json(self) -> Json:
        return self.body if isinstance(self.body, dict) else {}

    def flag(self, name: str) -> bool:
        return self.request.query.get(name, "").lower() in ("1", "true")


Handler = Callable[["FakeDiscord", Call], Awaitable[tuple[int, Any]]]
Limits = Callable[[Any, Json], None]


@dataclass
class Route:
    method: str
    template: str
    handler: Handler
    bot_auth: bool = True
    limits: Limits | None = None
    pattern: re.Pattern[str] = field(init=False)
    param_count: int = field(init=False)

    def __post_init__(self) -> None:
        regex = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(self.template))
        self.pattern = re.compile(f"^{regex}$")
        self.param_count = self.template.count("{")


class Router:
    def __init__(self) -> None:
        self.routes: list[Route] = []

    def add(self, method: str, template: str, **kwargs: Any) -> Callable[[Handler], Handler]:
        def decorator(handler: Handler) -> Handler:
            self.routes.append(Route(method, template, handler, **kwargs))
            return handler

        return decorator

    def match(self, method: str, path: str) -> tuple[Route | None, dict[str, str]]:
        """The route for ``path``, preferring the template with the fewest parameters."""
        best: tuple[Route | None, dict[str, str]] = (None, {})
        for route in self.routes:
            if route.method != method:
                continue
            found = route.pattern.match(path)
            if found and (best[0] is None or route.param_count < best[0].param_count):
                best = (route, found.groupdict())
        return best


async def read_body(request: web.Request) -> tuple[Any, list[FileUpload]]:
    """JSON body, or multipart ``payload_json`` plus ``files[n]`` parts."""
    if not request.body_exists:
        return None, []
    ctype = request.content_type
    if ctype == "multipart/form-data":
        payload: Any = None
        files: list[FileUpload] = []
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader):
                raise DiscordError(50035, detail="nested multipart")
            name = part.name or ""
            data = await part.read()
            if name == "payload_json":
                payload = _loads(data)
            elif name.startswith("files[") and name[6:-1].isdigit():
                part_type = part.headers.get("Content-Type")
                upload = FileUpload(part.filename or "file", bytes(data), part_type)
                upload.index = int(name[6:-1])
                files.append(upload)
        return payload, files
    raw = await request.read()
    if not raw:
        return None, []
    return _loads(raw), []


def _loads(raw: bytes | bytearray) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        raise DiscordError(50109) from None


ROUTER = Router()
