"""The fake gateway: HELLO, heartbeats, IDENTIFY/READY/GUILD_CREATE, RESUME, dispatches.

Frames are plain JSON text, or with ``compress=zlib-stream`` in the URL one zlib stream per
connection, each message flushed with ``Z_SYNC_FLUSH`` (as Discord does). Events are kept per
session so a RESUME replays what the client missed.

Sharding as Discord does it: an IDENTIFY with ``shard: [id, count]`` opens a session that
carries only the guilds with ``(guild_id >> 22) % count == id`` (READY, GUILD_CREATE and every
guild event; direct messages go to shard 0). A session that would carry more than
``fake.max_guilds_per_session`` guilds is closed with 4011 (sharding required), a shard
outside its count with 4010. Sharded IDENTIFYs in one bucket (``id % max_concurrency``) less
than ``fake.identify_window`` apart are refused with op 9 and recorded as a violation.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import WSMsgType, web

from .models import Intent, Json, shard_of
from .wire import Violation

if TYPE_CHECKING:
    from .server import FakeDiscord

log = logging.getLogger(__name__)

HEARTBEAT_INTERVAL_MS = 41_250
CLOSE_AUTHENTICATION_FAILED = 4004
CLOSE_INVALID_SHARD = 4010
CLOSE_SHARDING_REQUIRED = 4011
IDENTIFY_TOO_FAST = 9  # the violation code: op 9 INVALID_SESSION answered an IDENTIFY
CLOSE_INVALID_API_VERSION = 4012
CLOSE_DISALLOWED_INTENTS = 4014
GATEWAY_PATH = "/gateway"
RESUME_PATH = "/gateway-resume"

# event name -> intent needed to receive it (None: always sent)
_EVENT_INTENTS: dict[str, int | None] = {
    "GUILD_CREATE": Intent.GUILDS,
    "CHANNEL_UPDATE": Intent.GUILDS,
    "THREAD_CREATE": Intent.GUILDS,
    "THREAD_UPDATE": Intent.GUILDS,
    "THREAD_DELETE": Intent.GUILDS,
}


@dataclass
class Connection:
    """One websocket as the client opened it."""

    path: str
    query: dict[str, str]
    compress: bool
    close_code: int | None = None  # the code the fake closed with (None: the client closed)


@dataclass
class Session:
    id: str
    intents: int
    seq: int = 0
    ws: web.WebSocketResponse | None = None
    compressor: Any = None
    backlog: list[tuple[int, str]] = field(default_factory=list)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    resumes: int = 0
    shard: tuple[int, int] | None = None  # (id, count) as identified; None: unsharded

    def carries(self, guild_id: int | None) -> bool:
        """Whether this session receives events of ``guild_id`` (None: a direct message)."""
        if self.shard is None:
            return True
        shard_id, count = self.shard
        return shard_id == 0 if guild_id is None else shard_of(guild_id, count) == shard_id


class FakeGateway:
    """Gateway sessions of one fake Discord."""

    def __init__(self, fake: FakeDiscord) -> None:
        self.fake = fake
        self.sessions: dict[str, Session] = {}
        self.connections: list[Connection] = []
        self.received: list[Json] = []
        self.session_starts = 0  # IDENTIFYs that opened a session
        self._identified_at: dict[int, float] = {}  # bucket -> loop time of its last IDENTIFY
        self._sockets: dict[web.WebSocketResponse, Connection] = {}
        self._write_locks: dict[web.WebSocketResponse, asyncio.Lock] = {}

    # --- public helpers ---------------------------------------------------------------------

    @property
    def session(self) -> Session:
        """The most recent session (tests normally run one bot)."""
        if not self.sessions:
            raise AssertionError("no gateway session: is the bot connected?")
        return list(self.sessions.values())[-1]

    def shard_sessions(self) -> dict[int, Session]:
        """The latest session of each shard id (unsharded sessions count as shard 0)."""
        return {(s.shard or (0, 1))[0]: s for s in self.sessions.values()}

    def connected(self) -> bool:
        return any(s.ws is not None and not s.ws.closed for s in self.sessions.values())

    async def force_reconnect(self) -> None:
        """Send op 7 RECONNECT; discord.py closes and RESUMEs at ``resume_gateway_url``."""
        for session in self.sessions.values():
            if session.ws is not None and not session.ws.closed:
                await session.ws.send_str(json.dumps({"op": 7, "d": None}))

    async def close_all(self) -> None:
        for ws in list(self._sockets):
            await self._close(ws, 1001, "fake Discord shutting down")

    # --- dispatch ---------------------------------------------------------------------------

    async def dispatch(
        self,
        event: str,
        data: Json,
        *,
        per_session: Callable[[Session, Json], Json | None] | None = None,
    ) -> None:
        """Send a DISPATCH to every session whose intents cover ``event`` and whose shard
        carries the event's guild."""
        needed = _EVENT_INTENTS.get(event)
        raw = data.get("guild_id")
        if raw is None and event in ("GUILD_CREATE", "GUILD_UPDATE", "GUILD_DELETE"):
            raw = data.get("id")
        guild_id = int(raw) if raw is not None else None
        for session in list(self.sessions.values()):
            if needed is not None and not session.intents & needed:
                continue
            if not session.carries(guild_id):
                continue
            payload = per_session(session, data) if per_session else data
            if payload is not None:
                await self._send_event(session, event, payload)

    async def _send_event(self, session: Session, event: str, data: Json) -> None:
        async with session.lock:
            session.seq += 1
            text = json.dumps({"op": 0, "s": session.seq, "t": event, "d": data})
            session.backlog.append((session.seq, text))
            if session.ws is not None and not session.ws.closed:
                await self._send_raw(session, text)

    async def _send_raw(self, session: Session, text: str) -> None:
        """Compress (if asked) and send one frame; frames on a socket never interleave."""
        ws = session.ws
        assert ws is not None
        lock = self._write_locks.setdefault(ws, asyncio.Lock())
        async with lock:
            try:
                if session.compressor is not None:
                    frame = session.compressor.compress(text.encode())
                    frame += session.compressor.flush(zlib.Z_SYNC_FLUSH)
                    await ws.send_bytes(frame)
                else:
                    await ws.send_str(text)
            except (ConnectionResetError, RuntimeError):
                # the socket is closing: the event stays in the backlog for a RESUME
                log.debug("fake gateway: dropped a frame on a closing socket")

    # --- the websocket ----------------------------------------------------------------------

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True, max_msg_size=0)
        await ws.prepare(request)
        query = dict(request.query)
        compress = query.get("compress") == "zlib-stream"
        conn = Connection(request.path, query, compress)
        self.connections.append(conn)
        self._sockets[ws] = conn
        compressor = zlib.compressobj() if compress else None
        # a provisional session object only for framing HELLO / errors
        transport = Session("", 0, ws=ws, compressor=compressor)
        session: Session | None = None
        try:
            if query.get("v") != "10" or query.get("encoding", "json") != "json":
                await self._close(ws, CLOSE_INVALID_API_VERSION, "Invalid API version")
                return ws
            hello = {"op": 10, "d": {"heartbeat_interval": HEARTBEAT_INTERVAL_MS}}
            await self._send_raw(transport, json.dumps(hello))
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                frame = json.loads(msg.data)
                self.received.append(frame)
                session = await self._on_frame(ws, transport, session, frame) or session
                self.fake.notify()
        finally:
            self._sockets.pop(ws, None)
            self._write_locks.pop(ws, None)
            if session is not None and session.ws is ws:
                session.ws = None
            self.fake.notify()
        return ws

    async def _close(self, ws: web.WebSocketResponse, code: int, reason: str) -> None:
        if ws in self._sockets:
            self._sockets[ws].close_code = code
        await ws.close(code=code, message=reason.encode())

    async def _on_frame(
        self, ws: web.WebSocketResponse, transport: Session, session: Session | None, frame: Json
    ) -> Session | None:
        op, data = frame.get("op"), frame.get("d") or {}
        if op == 1:
            await self._send_raw(session or transport, json.dumps({"op": 11}))
        elif op == 2:
            return await self._identify(ws, transport, data)
        elif op == 6:
            return await self._resume(ws, transport, data)
        elif op == 8 and session is not None:
            await self._members_chunk(session, data)
        return None

    async def _identify(
        self, ws: web.WebSocketResponse, transport: Session, data: Json
    ) -> Session | None:
        fake = self.fake
        if data.get("token") != fake.token:
            await self._close(ws, CLOSE_AUTHENTICATION_FAILED, "Authentication failed.")
            return None
        intents = int(data.get("intents", 0))
        if intents & Intent.PRIVILEGED & ~fake.granted_intents:
            await self._close(ws, CLOSE_DISALLOWED_INTENTS, "Disallowed intent(s).")
            return None
        shard = data.get("shard")
        if shard is not None and not (
            isinstance(shard, list)
            and len(shard) == 2
            and all(isinstance(x, int) for x in shard)
            and 0 <= shard[0] < shard[1]
        ):
            await self._close(ws, CLOSE_INVALID_SHARD, "Invalid shard.")
            return None
        session = Session(secrets.token_hex(16), intents, ws=ws, compressor=transport.compressor)
        session.shard = (shard[0], shard[1]) if shard is not None else None
        guilds = [g for g in fake.guilds.values() if session.carries(g.id)]
        if len(guilds) > fake.max_guilds_per_session:
            await self._close(ws, CLOSE_SHARDING_REQUIRED, "Sharding required.")
            return None
        if shard is not None and not await self._identify_allowed(transport, shard[0]):
            return None
        self.session_starts += 1
        self.sessions[session.id] = session
        ready = {
            "v": 10,
            "user": fake.bot_user.to_dict() | {"verified": True, "mfa_enabled": False},
            "guilds": [{"id": str(g.id), "unavailable": True} for g in guilds],
            "session_id": session.id,
            "session_type": "normal",
            "resume_gateway_url": fake.resume_gateway_url,
            "application": {"id": str(fake.application_id), "flags": 0},
            "private_channels": [],
            "relationships": [],
            "user_settings": {},
            "guild_join_requests": [],
            "geo_ordered_rtc_regions": ["local"],
            "auth_session_id_hash": "fake",
            "_trace": ["fake-discord"],
        }
        if "shard" in data:
            ready["shard"] = data["shard"]
        await self._send_event(session, "READY", ready)
        for guild in guilds:
            if intents & Intent.GUILDS:
                await self._send_event(
                    session, "GUILD_CREATE", fake.guild_create_payload(guild, intents)
                )
        return session

    async def _identify_allowed(self, transport: Session, shard_id: int) -> bool:
        """At most one IDENTIFY per bucket (``shard_id % max_concurrency``) and window."""
        bucket = shard_id % max(1, self.fake.max_concurrency)
        now = asyncio.get_running_loop().time()
        last = self._identified_at.get(bucket)
        # A little slack for the time the frames spend in flight.
        if last is not None and now - last < self.fake.identify_window - 0.05:
            detail = (
                f"shard {shard_id} identified {now - last:.2f}s after another in its bucket "
                f"{bucket}; max_concurrency={self.fake.max_concurrency} allows one per "
                f"{self.fake.identify_window}s"
            )
            self.fake.violations.append(
                Violation(
                    "IDENTIFY",
                    GATEWAY_PATH,
                    0,
                    IDENTIFY_TOO_FAST,
                    "identify too fast",
                    None,
                    detail,
                )
            )
            await self._send_raw(transport, json.dumps({"op": 9, "d": False}))
            return False
        self._identified_at[bucket] = now
        return True

    async def _resume(
        self, ws: web.WebSocketResponse, transport: Session, data: Json
    ) -> Session | None:
        session = self.sessions.get(str(data.get("session_id")))
        if session is None or data.get("token") != self.fake.token:
            await self._send_raw(transport, json.dumps({"op": 9, "d": False}))
            return None
        async with session.lock:
            session.ws = ws
            session.compressor = transport.compressor
            session.resumes += 1
            last = int(data.get("seq") or 0)
            for seq, text in session.backlog:
                if seq > last:
                    await self._send_raw(session, text)
        await self._send_event(session, "RESUMED", {"_trace": ["fake-discord"]})
        return session

    async def _members_chunk(self, session: Session, data: Json) -> None:
        guild = self.fake.guilds.get(int(data.get("guild_id", 0)))
        if guild is None:
            return
        chunk = {
            "guild_id": str(guild.id),
            "members": [m.to_dict() for m in guild.members.values()],
            "chunk_index": 0,
            "chunk_count": 1,
            "not_found": [],
            **({"nonce": data["nonce"]} if data.get("nonce") else {}),
        }
        await self._send_event(session, "GUILD_MEMBERS_CHUNK", chunk)
