"""The fake Discord server: REST, gateway and CDN on one aiohttp app on 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import hashlib
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiohttp import web

from . import interactions, rest  # noqa: F401 - they register their routes
from .actors import Actor
from .gateway import GATEWAY_PATH, RESUME_PATH, FakeGateway, Session
from .models import DM, Channel, FakeClock, Guild, Intent, Json, StoredMessage, User
from .validation import SpecValidator
from .wire import ROUTER, Call, DiscordError, RequestRecord, Violation, json_response, read_body
from .world import World, content_visible, strip_content

if TYPE_CHECKING:
    import discord

log = logging.getLogger(__name__)
API_PREFIX = "/api/v10"
EDIT_ROUTE = ("PATCH", "/channels/{channel_id}/messages/{message_id}")


@dataclass
class RateLimitRule:
    """Answer the next ``times`` matching requests with 429."""

    method: str | None
    template: str | None
    retry_after: float
    is_global: bool
    times: int


class FakeDiscord(World):
    """A fake Discord for discord.py: see the package docstring for the tour."""

    def __init__(
        self,
        *,
        validator: SpecValidator | None = None,
        granted_intents: int = 0,
        clock: FakeClock | None = None,
    ) -> None:
        super().__init__(clock=clock, granted_intents=granted_intents)
        self.validator = validator
        self.gateway = FakeGateway(self)
        self.requests: list[RequestRecord] = []
        self.violations: list[Violation] = []
        self.allowed_codes: set[int] = set()
        self.rate_limited: list[RequestRecord] = []
        self._rate_limits: list[RateLimitRule] = []
        self._edit_limit: tuple[int, float] | None = None
        self._edits: dict[str, list[float]] = {}  # channel id -> times of recent edits
        self._runner: web.AppRunner | None = None
        self.base_url = ""

    # --- lifecycle --------------------------------------------------------------------------

    async def start(self) -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_get(GATEWAY_PATH, self.gateway.handle)
        app.router.add_get(RESUME_PATH, self.gateway.handle)
        app.router.add_get("/attachments/{channel_id}/{attachment_id}/{filename}", self.cdn.handle)
        app.router.add_route("*", API_PREFIX + "/{tail:.*}", self._api)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.base_url = f"http://127.0.0.1:{port}"
        self.cdn.base_url = self.base_url

    async def close(self) -> None:
        await self.gateway.close_all()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def api_base(self) -> str:
        """For ``discord.http.Route.BASE``."""
        return self.base_url + API_PREFIX

    @property
    def gateway_url(self) -> str:
        """For ``DiscordWebSocket.DEFAULT_GATEWAY``."""
        return self.base_url.replace("http", "ws", 1) + GATEWAY_PATH

    @property
    def resume_gateway_url(self) -> str:
        return self.base_url.replace("http", "ws", 1) + RESUME_PATH

    @contextlib.asynccontextmanager
    async def running(
        self,
        bot: discord.Client,
        *,
        timeout: float = 10.0,  # noqa: ASYNC109 - test-facing API
    ) -> AsyncIterator[discord.Client]:
        """Log ``bot`` in, connect it, wait for ``on_ready``, and close it on exit.

        Errors from connecting (``PrivilegedIntentsRequired``...) are raised here.
        """
        try:
            await bot.login(self.token)
        except BaseException:
            await bot.close()
            raise
        task = asyncio.create_task(bot.connect(reconnect=True))
        ready = asyncio.create_task(bot.wait_until_ready())
        try:
            done, _ = await asyncio.wait(
                {task, ready}, timeout=timeout, return_when="FIRST_COMPLETED"
            )
            if task in done:
                task.result()
                raise AssertionError("bot.connect() returned before the bot was ready")
            if not done:
                raise AssertionError(f"bot not ready after {timeout}s")
            yield bot
        finally:
            ready.cancel()
            await bot.close()
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await task

    # --- actors and reading messages ----------------------------------------------------------

    def member(self, name: str) -> Actor:
        """The human member called ``name`` ("alice", "bob", "carol" by default) as an actor."""
        return Actor(self, self.user(name))

    def bot_messages(
        self, channel: Channel | str | int, *, include_ephemeral: bool = False
    ) -> list[StoredMessage]:
        """The bot's live messages in a channel or thread, oldest first."""
        target = channel if isinstance(channel, Channel) else self.channel(channel)
        found = self.messages_in(target, include_ephemeral=include_ephemeral)
        return [m for m in found if m.author_id == self.bot_user.id]

    async def wait_for_message(
        self,
        channel: Channel | str | int,
        predicate: Callable[[StoredMessage], bool] = lambda m: True,
        *,
        author: User | None = None,
        timeout: float = 5.0,  # noqa: ASYNC109
    ) -> StoredMessage:
        """Wait for a message (by default the bot's) in ``channel`` matching ``predicate``."""
        target = channel if isinstance(channel, Channel) else self.channel(channel)
        who = author or self.bot_user

        def find() -> StoredMessage | None:
            for message in reversed(self.messages_in(target, include_ephemeral=True)):
                if message.author_id == who.id and predicate(message):
                    return message
            return None

        return await self.wait_for(find, timeout=timeout, what=f"a message in #{target.name}")

    # --- violations and the request log ----------------------------------------------------

    def allow_violations(self, *codes: int) -> None:
        """Declare that violations with these Discord error codes are expected in this test."""
        self.allowed_codes.update(codes)

    def recent_rejections(self) -> list[object]:
        return list(self.violations[-3:])

    def unexpected_violations(self) -> list[Violation]:
        return [v for v in self.violations if v.code not in self.allowed_codes]

    def pop_violations(self) -> list[Violation]:
        """Return and forget the violations so far (for negative tests that assert on them)."""
        found, self.violations = self.violations, []
        return found

    async def wait_for_violation(self, code: int, *, timeout: float = 5.0) -> Violation:  # noqa: ASYNC109
        """Wait for a violation with ``code`` and return it (it stays recorded)."""
        self.allow_violations(code)
        return await self.wait_for(
            lambda: next((v for v in self.violations if v.code == code), None),
            timeout=timeout,
            what=f"a violation with code {code}",
        )

    def requests_to(self, method: str, template: str) -> list[RequestRecord]:
        """Requests matched to a route template such as ``/channels/{channel_id}/messages``."""
        return [r for r in self.requests if r.method == method and r.template == template]

    def rate_limit(
        self,
        method: str | None = None,
        template: str | None = None,
        *,
        retry_after: float = 0.05,
        is_global: bool = False,
        times: int = 1,
    ) -> None:
        """Answer the next ``times`` requests (optionally only matching ones) with a 429."""
        self._rate_limits.append(RateLimitRule(method, template, retry_after, is_global, times))

    def limit_message_edits(self, per: int = 5, seconds: float = 5.0) -> None:
        """From now on, answer a message edit with 429 when ``per`` edits in the same channel
        already happened in the last ``seconds`` (by the fake's clock), like Discord's
        per-channel bucket."""
        self._edit_limit = (per, seconds)

    def _edit_over_limit(
        self, method: str, template: str | None, params: dict[str, str]
    ) -> RateLimitRule | None:
        if self._edit_limit is None or (method, template) != EDIT_ROUTE:
            return None
        per, seconds = self._edit_limit
        now = self.clock.time()
        edits = self._edits.setdefault(params.get("channel_id", ""), [])
        edits[:] = [t for t in edits if now - t < seconds]
        if len(edits) >= per:
            return RateLimitRule(method, template, seconds - (now - edits[0]), False, 1)
        edits.append(now)
        return None

    def _take_rate_limit(self, method: str, template: str | None) -> RateLimitRule | None:
        for rule in self._rate_limits:
            if rule.method in (None, method) and rule.template in (None, template):
                rule.times -= 1
                if rule.times <= 0:
                    self._rate_limits.remove(rule)
                return rule
        return None

    # --- the REST pipeline -------------------------------------------------------------------

    async def _api(self, request: web.Request) -> web.Response:
        method = request.method
        path = "/" + request.match_info["tail"]
        route, params = ROUTER.match(method, path)
        template = route.template if route else None
        record = RequestRecord(method, path, template, dict(request.query), self.clock.time())
        self.requests.append(record)
        bucket = hashlib.sha1(f"{method} {template}".encode()).hexdigest()[:16]
        try:
            rule = self._take_rate_limit(method, template) or self._edit_over_limit(
                method, template, params
            )
            if rule is not None:
                self.rate_limited.append(record)
                return self._answer(record, self._too_many(rule, bucket))
            record.body, record.files = await read_body(request)
            if route is None:
                raise DiscordError(
                    0, detail="unknown route: the fake (and Discord?) has no such route"
                )
            if route.bot_auth and request.headers.get("Authorization") != f"Bot {self.token}":
                raise DiscordError(40001, detail="missing or wrong bot token")
            self._validate(method, route.template, route.limits, record.body, len(record.files))
            status, data = await route.handler(
                self, Call(request, params, record.body, record.files)
            )
        except DiscordError as err:
            self.violations.append(
                Violation(method, path, err.status, err.code, err.message, err.errors, err.detail)
            )
            log.warning("fake Discord rejected %s %s: %s", method, path, err)
            return self._answer(record, json_response(err.body(), status=err.status))
        except Exception as exc:
            # A bug in the fake: fail the test at once instead of letting discord.py retry a 500.
            log.exception("fake Discord crashed on %s %s", method, path)
            detail = f"fake Discord crashed: {exc!r}"
            self.violations.append(Violation(method, path, 400, -1, "fake error", None, detail))
            body = {"code": -1, "message": detail}
            return self._answer(record, json_response(body, status=400))
        headers = {
            "X-RateLimit-Limit": "50",
            "X-RateLimit-Remaining": "49",
            "X-RateLimit-Reset": f"{self.clock.time() + 1:.3f}",
            "X-RateLimit-Reset-After": "1.000",
            "X-RateLimit-Bucket": bucket,
        }
        if status == 204:
            return self._answer(record, web.Response(status=204, headers=headers))
        record.response = data
        return self._answer(record, json_response(data, status=status, headers=headers))

    def _answer(self, record: RequestRecord, response: web.Response) -> web.Response:
        record.status = response.status
        self.notify()
        return response

    def _too_many(self, rule: RateLimitRule, bucket: str) -> web.Response:
        headers = {
            "Via": "1.1 google",
            "Retry-After": str(max(1, round(rule.retry_after))),
            "X-RateLimit-Scope": "global" if rule.is_global else "user",
        }
        if rule.is_global:
            headers["X-RateLimit-Global"] = "true"
        else:
            headers.update(
                {
                    "X-RateLimit-Limit": "5",
                    "X-RateLimit-Remaining": "0",
                    "X-RateLimit-Reset": f"{self.clock.time() + rule.retry_after:.3f}",
                    "X-RateLimit-Reset-After": f"{rule.retry_after:.3f}",
                    "X-RateLimit-Bucket": bucket,
                }
            )
        body = {
            "message": "You are being rate limited.",
            "retry_after": rule.retry_after,
            "global": rule.is_global,
        }
        return json_response(body, status=429, headers=headers)

    def _validate(
        self, method: str, template: str, limits: Any, body: Any, file_count: int
    ) -> None:
        errors: Json = {}
        if self.validator is not None and body is not None:
            errors = self.validator.validate(method, template, body)
        if limits is not None and body is not None:
            limits(body, errors)
        if file_count > 10:
            errors.setdefault("files", {}).setdefault("_errors", []).append(
                {"code": "BASE_TYPE_MAX_LENGTH", "message": "Must be 10 or fewer in length."}
            )
        if errors:
            raise DiscordError(50035, errors)

    # --- payloads and dispatches -------------------------------------------------------------

    def guild_create_payload(self, guild: Guild, intents: int = Intent.GUILD_MEMBERS) -> Json:
        """GUILD_CREATE; without GUILD_MEMBERS only the bot itself is in ``members``."""
        members = list(guild.members.values())
        if not intents & Intent.GUILD_MEMBERS:
            members = [guild.members[self.bot_user.id]]
        channels = [self.channels[c] for c in guild.channel_ids]
        threads = [self.channels[t] for t in self.thread_ids.get(guild.id, [])]
        return {
            "id": str(guild.id),
            "name": guild.name,
            "icon": None,
            "splash": None,
            "discovery_splash": None,
            "banner": None,
            "description": None,
            "owner_id": str(guild.owner_id),
            "afk_channel_id": None,
            "afk_timeout": 300,
            "verification_level": 0,
            "default_message_notifications": 1,
            "explicit_content_filter": 0,
            "mfa_level": 0,
            "nsfw_level": 0,
            "premium_tier": guild.premium_tier,
            "premium_subscription_count": 0,
            "preferred_locale": guild.locale,
            "system_channel_id": str(guild.channel_ids[0]) if guild.channel_ids else None,
            "system_channel_flags": 0,
            "rules_channel_id": None,
            "public_updates_channel_id": None,
            "features": [],
            "roles": [r.to_dict() for r in guild.roles.values()],
            "emojis": [],
            "stickers": [],
            "channels": [c.to_dict() for c in channels],
            "threads": [t.to_dict() for t in threads],
            "members": [m.to_dict() for m in members],
            "member_count": len(guild.members),
            "presences": [],
            "voice_states": [],
            "stage_instances": [],
            "guild_scheduled_events": [],
            "soundboard_sounds": [],
            "large": False,
            "unavailable": False,
            "lazy": True,
            "joined_at": guild.members[self.bot_user.id].joined_at,
            "max_members": 500000,
            "application_id": None,
        }

    def message_event(self, message: StoredMessage) -> Json:
        """A message as the gateway sends it (with ``guild_id`` and the author's ``member``)."""
        data = self.render_message(message)
        channel = self.channels[message.channel_id]
        guild = self.guild_of(channel)
        if guild is not None:
            data["guild_id"] = str(guild.id)
            member = guild.members.get(message.author_id)
            if member is not None and not message.payload.get("webhook_id"):
                data["member"] = member.to_dict(with_user=False)
        return data

    async def dispatch_message(self, event: str, message: StoredMessage) -> None:
        """MESSAGE_CREATE / MESSAGE_UPDATE, honouring intents and Message Content rules."""
        if message.ephemeral:
            return
        channel = self.channels[message.channel_id]
        is_dm = channel.type == DM
        needed = Intent.DIRECT_MESSAGES if is_dm else Intent.GUILD_MESSAGES
        data = self.message_event(message)

        def per_session(session: Session, payload: Json) -> Json | None:
            if not session.intents & needed:
                return None
            visible = content_visible(
                message,
                bot_id=self.bot_user.id,
                intents=session.intents,
                is_dm=is_dm,
                content_intent=Intent.MESSAGE_CONTENT,
            )
            return payload if visible else strip_content(copy.deepcopy(payload))

        await self.gateway.dispatch(event, data, per_session=per_session)

    async def dispatch_message_delete(self, message: StoredMessage) -> None:
        channel = self.channels[message.channel_id]
        data: Json = {"id": str(message.id), "channel_id": str(channel.id)}
        if channel.guild_id:
            data["guild_id"] = str(channel.guild_id)
        needed = Intent.DIRECT_MESSAGES if channel.type == DM else Intent.GUILD_MESSAGES
        await self.gateway.dispatch(
            "MESSAGE_DELETE", data, per_session=lambda s, d: d if s.intents & needed else None
        )

    async def dispatch_channel(self, event: str, channel: Channel, **extra: Any) -> None:
        await self.gateway.dispatch(event, channel.to_dict() | extra)

    async def set_bot_permissions(self, channel: Channel, *, allow: int = 0, deny: int = 0) -> None:
        """Give the bot a member overwrite in ``channel`` (CHANNEL_UPDATE tells discord.py)."""
        target = self.channels[channel.parent_id] if channel.parent_id else channel
        target.overwrites[self.bot_user.id] = (1, allow, deny)
        if self.gateway.sessions:
            await self.dispatch_channel("CHANNEL_UPDATE", target)
        self.notify()
