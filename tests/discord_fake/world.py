"""The fake Discord's state and the rules that read it (no HTTP, no websocket here)."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import re
import secrets
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from .cdn import Blob, FakeCDN
from .models import (
    DM,
    PRIVATE_THREAD,
    PUBLIC_THREAD,
    TEXT,
    Channel,
    FakeClock,
    Guild,
    Json,
    Member,
    Perm,
    Role,
    Snowflakes,
    StoredMessage,
    User,
    compute_permissions,
    iter_components,
)

T = TypeVar("T")
_MENTION = re.compile(r"<@!?(\d+)>")
DEFAULT_ATTACHMENT_LIMIT = 10 * 1024 * 1024
#: A boosted server's upload limit by boost level (levels 0 and 1: the default).
BOOSTED_ATTACHMENT_LIMITS = {2: 50 * 1024 * 1024, 3: 100 * 1024 * 1024}
INTERACTION_ACK_DEADLINE = 3.0
INTERACTION_TOKEN_LIFETIME = 15 * 60.0
#: Discord closes an unsharded (or too large) session of a bot in more guilds (4011).
MAX_GUILDS_PER_SESSION = 2500
#: GET /gateway/bot recommends one shard per this many guilds.
GUILDS_PER_SHARD = 1000
#: IDENTIFYs allowed per bucket (shard_id % max_concurrency) and window.
IDENTIFY_WINDOW = 5.0
RECHECK_INTERVAL = 0.02


@dataclass
class FileUpload:
    """A file as an actor (or the bot, via multipart) uploads it."""

    filename: str
    data: bytes
    content_type: str | None = None
    description: str | None = None
    width: int | None = None
    height: int | None = None
    index: int = 0  # the n of its multipart ``files[n]`` field


@dataclass
class InteractionState:
    """One interaction the fake sent, and what the bot did with it."""

    id: int
    token: str
    type: int
    payload: Json
    channel_id: int
    guild_id: int | None
    user_id: int
    created_at: float
    message_id: int | None = None
    response_type: int | None = None
    original_message_id: int | None = None
    followup_ids: list[int] = field(default_factory=list)
    modal: Json | None = None
    modal_submitted: bool = False
    choices: list[Json] | None = None  # the answer to an autocomplete interaction
    claimed: bool = False  # a first answer is being applied

    @property
    def acknowledged(self) -> bool:
        return self.response_type is not None


class World:
    """Users, guilds, channels, messages, commands and interactions of one fake Discord."""

    def __init__(self, *, clock: FakeClock | None = None, granted_intents: int = 0) -> None:
        self.clock = clock or FakeClock()
        self.ids = Snowflakes(self.clock)
        self.cdn = FakeCDN(self.clock)
        self.token = f"fake.{secrets.token_urlsafe(24)}"
        self.granted_intents = granted_intents
        self.attachment_size_limit = DEFAULT_ATTACHMENT_LIMIT
        self.ack_deadline = INTERACTION_ACK_DEADLINE
        self.token_lifetime = INTERACTION_TOKEN_LIFETIME
        # Sharding knobs (tests set them before the bot connects).
        self.max_guilds_per_session = MAX_GUILDS_PER_SESSION
        self.guilds_per_shard = GUILDS_PER_SHARD
        self.max_concurrency = 1  # session_start_limit.max_concurrency
        self.identify_window = IDENTIFY_WINDOW
        self.application_id = self.ids.next()
        self.bot_user = User(self.application_id, "Kontext", bot=True)
        self.users: dict[int, User] = {self.bot_user.id: self.bot_user}
        self.guilds: dict[int, Guild] = {}
        self.channels: dict[int, Channel] = {}
        self.thread_ids: dict[int, list[int]] = {}  # guild id -> its threads, oldest first
        self.messages: dict[int, StoredMessage] = {}
        self.global_commands: list[Json] = []
        self.guild_commands: dict[int, list[Json]] = {}
        self.interactions: dict[int, InteractionState] = {}
        self.reactions: dict[int, dict[str, set[int]]] = {}
        self.typing: list[tuple[int, int]] = []
        self._changed = asyncio.Event()
        self.guild = self.add_guild("Kontext Test Guild", humans=("alice", "bob", "carol"))

    # --- change notification ---------------------------------------------------------------

    def notify(self) -> None:
        """Wake every :meth:`wait_for`; call after any state change."""
        self._changed.set()
        self._changed = asyncio.Event()

    async def wait_for(
        self,
        predicate: Callable[[], T | None],
        *,
        timeout: float = 5.0,  # noqa: ASYNC109 - the documented test-facing API
        what: str = "",
    ) -> T:
        """Wait until ``predicate()`` is truthy and return it.

        Re-checked on every change in the fake, and at least every 20 ms for predicates about
        the bot's own state (which the fake cannot see change).
        """
        try:
            async with asyncio.timeout(timeout):
                while True:
                    result = predicate()
                    if result:
                        return result
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._changed.wait(), RECHECK_INTERVAL)
        except TimeoutError:
            hint = "".join(f"\n  rejected: {v}" for v in self.recent_rejections())
            raise AssertionError(
                f"fake Discord: timed out after {timeout}s waiting for {what or predicate!r}{hint}"
            ) from None

    def recent_rejections(self) -> list[object]:
        """The last few rejected requests, to explain a timeout (see ``FakeDiscord``)."""
        return []

    # --- building the world ------------------------------------------------------------------

    def add_user(self, name: str, *, bot: bool = False) -> User:
        user = User(self.ids.next(), name, bot=bot, global_name=name.title())
        self.users[user.id] = user
        return user

    def add_guild(
        self,
        name: str,
        *,
        channels: Sequence[str] = ("general", "images"),
        humans: Sequence[str] = ("alice", "bob", "carol"),
        members: Sequence[User] = (),
        shard: tuple[int, int] | None = None,
    ) -> Guild:
        """A guild with @everyone, a managed bot role, text channels, the bot, new users
        ``humans`` and existing users ``members`` (people in several guilds).

        The first human (or member) owns the guild. ``shard=(id, count)`` picks an id whose
        events that shard carries.
        """
        gid = self.ids.on_shard(*shard) if shard is not None else self.ids.next()
        now = self.clock.iso()
        people = [self.add_user(h) for h in humans] + list(members)
        bot_role = Role(self.ids.next(), self.bot_user.username, Perm.BOT_DEFAULT, 1, managed=True)
        guild = Guild(
            id=gid,
            name=name,
            owner_id=people[0].id if people else self.bot_user.id,
            roles={gid: Role(gid, "@everyone", Perm.EVERYONE_DEFAULT), bot_role.id: bot_role},
            members={},
            channel_ids=[],
            created_at=now,
        )
        guild.members[self.bot_user.id] = Member(self.bot_user, [bot_role.id], now)
        for person in people:
            guild.members[person.id] = Member(person, [], now)
        self.guilds[gid] = guild
        for position, channel_name in enumerate(channels):
            self.add_channel(guild, channel_name, position=position)
        return guild

    def add_channel(self, guild: Guild, name: str, *, position: int = 0) -> Channel:
        channel = Channel(
            self.ids.next(), TEXT, name, guild.id, position=position, created_at=self.clock.iso()
        )
        self.channels[channel.id] = channel
        guild.channel_ids.append(channel.id)
        return channel

    def add_thread(
        self, parent: Channel, name: str, *, owner: User, private: bool = False, tid: int = 0
    ) -> Channel:
        thread = Channel(
            tid or self.ids.next(),
            PRIVATE_THREAD if private else PUBLIC_THREAD,
            name,
            parent.guild_id,
            parent_id=parent.id,
            owner_id=owner.id,
            created_at=self.clock.iso(),
            member_ids={owner.id},
        )
        self.channels[thread.id] = thread
        self.thread_ids.setdefault(thread.guild_id or 0, []).append(thread.id)
        return thread

    def dm_channel(self, user: User) -> Channel:
        """The DM channel between ``user`` and the bot (created on first use)."""
        for channel in self.channels.values():
            if channel.type == DM and channel.recipient is user:
                return channel
        channel = Channel(self.ids.next(), DM, None, None, recipient=user)
        self.channels[channel.id] = channel
        return channel

    # --- lookups ---------------------------------------------------------------------------

    def channel(self, name_or_id: str | int, guild: Guild | None = None) -> Channel:
        """A channel or thread by id or name."""
        if isinstance(name_or_id, int):
            return self.channels[name_or_id]
        for channel in self.channels.values():
            if channel.name == name_or_id and (guild is None or channel.guild_id == guild.id):
                return channel
        raise KeyError(f"no channel named {name_or_id!r}")

    def user(self, name: str) -> User:
        for user in self.users.values():
            if user.username == name:
                return user
        raise KeyError(f"no user named {name!r}")

    def guild_of(self, channel: Channel) -> Guild | None:
        return self.guilds.get(channel.guild_id) if channel.guild_id else None

    def upload_limit(self, channel: Channel) -> int:
        """The most bytes a file may have in ``channel``: its server's boost level decides,
        else ``attachment_size_limit``."""
        guild = self.guild_of(channel)
        tier = guild.premium_tier if guild is not None else 0
        return BOOSTED_ATTACHMENT_LIMITS.get(tier, self.attachment_size_limit)

    def permissions(self, user_id: int, channel: Channel) -> int:
        """``user_id``'s permissions in ``channel`` (a thread uses its parent's overwrites)."""
        guild = self.guild_of(channel)
        if guild is None:
            return Perm.ALL & ~(Perm.MANAGE_MESSAGES | Perm.MANAGE_THREADS)
        member = guild.members[user_id]
        base = self.channels[channel.parent_id] if channel.parent_id else channel
        return compute_permissions(guild, base, member)

    def bot_permissions(self, channel: Channel) -> int:
        return self.permissions(self.bot_user.id, channel)

    def messages_in(
        self, channel: Channel | int, *, include_ephemeral: bool = False
    ) -> list[StoredMessage]:
        """The channel's live messages, oldest first."""
        ch = self.channels[channel] if isinstance(channel, int) else channel
        found = (self.messages[mid] for mid in ch.message_ids)
        return [m for m in found if not m.deleted and (include_ephemeral or not m.ephemeral)]

    def threads_of(self, channel: Channel) -> list[Channel]:
        return [c for c in self.channels.values() if c.parent_id == channel.id]

    # --- messages --------------------------------------------------------------------------

    def store_files(self, channel: Channel, files: Iterable[FileUpload]) -> list[Json]:
        """Put uploads on the CDN and return their attachment objects (URLs added on render)."""
        attachments = []
        for upload in files:
            aid = self.ids.next()
            self.cdn.put(Blob(channel.id, aid, upload.filename, upload.data, upload.content_type))
            item: Json = {"id": str(aid), "filename": upload.filename, "size": len(upload.data)}
            for key in ("content_type", "description", "width", "height"):
                if getattr(upload, key) is not None:
                    item[key] = getattr(upload, key)
            attachments.append(item)
        return attachments

    def create_message(
        self,
        channel: Channel,
        author: User,
        body: Json,
        *,
        attachments: Sequence[Json] = (),
        reference: StoredMessage | None = None,
        ping_reply: bool = True,
        msg_type: int = 0,
        extra: Json | None = None,
        ephemeral: bool = False,
        interaction_id: int | None = None,
    ) -> StoredMessage:
        """Store a new message built from a create body (``content``, ``embeds``, ...)."""
        mid = self.ids.next()
        content = str(body.get("content") or "")
        payload: Json = {
            "id": str(mid),
            "channel_id": str(channel.id),
            "type": 19 if reference is not None and msg_type == 0 else msg_type,
            "author": author.to_dict(),
            "content": content,
            "timestamp": self.clock.iso(),
            "edited_timestamp": None,
            "tts": bool(body.get("tts", False)),
            "mention_everyone": False,
            "mentions": [],
            "mention_roles": [],
            "attachments": list(attachments),
            "embeds": list(body.get("embeds") or []),
            "components": list(body.get("components") or []),
            "pinned": False,
            "flags": int(body.get("flags") or 0),
        }
        if body.get("nonce") is not None:
            payload["nonce"] = body["nonce"]
        if body.get("poll"):
            payload["poll"] = body["poll"]
        if reference is not None:
            payload["message_reference"] = {
                "type": 0,
                "message_id": str(reference.id),
                "channel_id": str(reference.channel_id),
                **({"guild_id": str(channel.guild_id)} if channel.guild_id else {}),
            }
        payload.update(extra or {})
        payload["mentions"] = self._mentions(content, body, author, reference, ping_reply)
        message = StoredMessage(payload, ephemeral=ephemeral, interaction_id=interaction_id)
        self.messages[mid] = message
        channel.message_ids.append(mid)
        if channel.is_thread:
            channel.total_messages += 1
            channel.member_ids.add(author.id)
        self.notify()
        return message

    def _mentions(
        self,
        content: str,
        body: Json,
        author: User,
        reference: StoredMessage | None,
        ping_reply: bool,
    ) -> list[Json]:
        allowed = body.get("allowed_mentions")
        ids = [int(x) for x in _MENTION.findall(content)]
        if isinstance(allowed, dict):
            parse = allowed.get("parse") or []
            listed = {int(u) for u in allowed.get("users") or []}
            ids = [u for u in ids if "users" in parse or u in listed]
            ping_reply = ping_reply and bool(allowed.get("replied_user", False))
        if reference is not None and ping_reply and reference.author_id != author.id:
            ids.append(reference.author_id)
        seen: dict[int, Json] = {}
        for uid in ids:
            if uid in self.users and uid not in seen:
                seen[uid] = self.users[uid].to_dict()
        return list(seen.values())

    def edit_message(self, message: StoredMessage, body: Json, attachments: list[Json]) -> None:
        """Apply an edit body; ``attachments`` is the full new list (kept ones and new ones)."""
        for key in ("content", "embeds", "components", "flags"):
            if key in body and body[key] is not None:
                message.payload[key] = body[key]
            elif key in body:
                message.payload[key] = "" if key == "content" else ([] if key != "flags" else 0)
        if "attachments" in body or attachments:
            message.payload["attachments"] = attachments
        if body.get("content") is not None:
            author = self.users[message.author_id]
            message.payload["mentions"] = self._mentions(
                message.content, body, author, None, ping_reply=False
            )
        message.payload["edited_timestamp"] = self.clock.iso()
        self.notify()

    def render_message(self, message: StoredMessage, *, depth: int = 0) -> Json:
        """The message as Discord returns it now: freshly signed attachment URLs."""
        data = copy.deepcopy(message.payload)
        for item in data.get("attachments", []):
            item["url"] = item["proxy_url"] = self.cdn.url(int(item["id"]))
        reference = data.get("message_reference")
        if reference and depth == 0:
            target = self.messages.get(int(reference["message_id"]))
            data["referenced_message"] = (
                self.render_message(target, depth=1) if target and not target.deleted else None
            )
        if message.id in self.reactions:
            data["reactions"] = [
                {
                    "emoji": {"id": None, "name": emoji},
                    "count": len(users),
                    "count_details": {"burst": 0, "normal": len(users)},
                    "burst_colors": [],
                    "me": self.bot_user.id in users,
                    "me_burst": False,
                    "burst_me": False,
                    "burst_count": 0,
                }
                for emoji, users in self.reactions[message.id].items()
                if users
            ]
        thread = self.channels.get(message.id)
        if thread is not None and thread.is_thread and depth == 0:
            data["thread"] = thread.to_dict()
        return data

    def find_button(self, message: StoredMessage, label_or_id: str) -> Json:
        """A button on ``message`` whose custom_id or label is ``label_or_id``."""
        for component in iter_components(message.components):
            if component.get("type") == 2 and label_or_id in (
                component.get("custom_id"),
                component.get("label"),
            ):
                return component
        raise AssertionError(f"no button {label_or_id!r} on message {message.id}")

    def commands_for(self, guild_id: int | None) -> list[Json]:
        return [*self.guild_commands.get(guild_id or 0, []), *self.global_commands]

    def find_command(self, name: str, kind: int, guild_id: int | None) -> Json:
        for command in self.commands_for(guild_id):
            if command["name"] == name and command.get("type", 1) == kind:
                return command
        known = [c["name"] for c in self.commands_for(guild_id)]
        raise AssertionError(
            f"command {name!r} (type {kind}) is not registered with the fake Discord; "
            f"registered: {known}. Did the bot sync its command tree?"
        )


def content_visible(
    message: StoredMessage, *, bot_id: int, intents: int, is_dm: bool, content_intent: int
) -> bool:
    """Whether a bot with ``intents`` may see the message's content (Message Content rules)."""
    if intents & content_intent or is_dm or message.author_id == bot_id:
        return True
    return any(int(m["id"]) == bot_id for m in message.payload.get("mentions", []))


def strip_content(data: Json) -> Json:
    """Empty the fields hidden without the Message Content intent."""
    data.update(content="", embeds=[], attachments=[], components=[])
    data.pop("poll", None)
    return data
