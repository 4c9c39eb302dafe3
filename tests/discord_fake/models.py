"""The fake Discord's world: clock, snowflakes, permissions, users, guilds, channels, messages.

Everything is kept as close to Discord's JSON as possible: :meth:`to_dict` methods return the
payloads Discord sends (snowflakes as strings, ISO 8601 timestamps).
"""

from __future__ import annotations

import datetime as dt
import itertools
import time
from dataclasses import dataclass, field
from typing import Any

DISCORD_EPOCH_MS = 1_420_070_400_000
Json = dict[str, Any]


class FakeClock:
    """The fake's notion of now: wall time plus an offset that tests can :meth:`advance`.

    Interaction deadlines (3 s to acknowledge, 15 min token lifetime), snowflakes, timestamps
    and CDN URL expiry all read this clock, so ``fake.clock.advance(901)`` expires every
    interaction token at once without waiting. ``frozen=True`` stops the wall-clock part.
    """

    def __init__(self, *, frozen: bool = False) -> None:
        self._frozen_at = time.time() if frozen else None
        self._offset = 0.0

    def time(self) -> float:
        """Unix seconds."""
        base = self._frozen_at if self._frozen_at is not None else time.time()
        return base + self._offset

    def advance(self, seconds: float) -> None:
        """Move now forward by ``seconds``."""
        if seconds < 0:
            raise ValueError("the clock only goes forward")
        self._offset += seconds

    def iso(self, at: float | None = None) -> str:
        moment = self.time() if at is None else at
        return dt.datetime.fromtimestamp(moment, dt.UTC).isoformat()


class Snowflakes:
    """Snowflake ids whose timestamp part follows the fake clock."""

    def __init__(self, clock: FakeClock) -> None:
        self._clock = clock
        self._counter = itertools.count()
        self._last = 0

    def next(self) -> int:
        ms = int(self._clock.time() * 1000) - DISCORD_EPOCH_MS
        value = (ms << 22) | (next(self._counter) & 0xFFF)
        self._last = max(self._last + 1, value)
        return self._last

    def on_shard(self, shard_id: int, shard_count: int) -> int:
        """A new id whose guild would be carried by ``shard_id`` of ``shard_count``: the
        timestamp part is moved forward to the next millisecond that maps there."""
        value = self.next()  # above every id so far, and so is the result
        ms = value >> 22
        ms += (shard_id - ms) % shard_count
        self._last = (ms << 22) | (value & 0x3FFFFF)
        return self._last


def shard_of(guild_id: int, shard_count: int) -> int:
    """The shard that carries a guild's events: ``(guild_id >> 22) % shard_count``."""
    return (guild_id >> 22) % shard_count


def snowflake_time(snowflake: int) -> float:
    """The unix time a snowflake was made at."""
    return ((snowflake >> 22) + DISCORD_EPOCH_MS) / 1000


class Perm:
    """Permission bits the fake checks (values from Discord's docs)."""

    ADD_REACTIONS = 1 << 6
    VIEW_CHANNEL = 1 << 10
    SEND_MESSAGES = 1 << 11
    MANAGE_MESSAGES = 1 << 13
    EMBED_LINKS = 1 << 14
    ATTACH_FILES = 1 << 15
    READ_MESSAGE_HISTORY = 1 << 16
    MENTION_EVERYONE = 1 << 17
    USE_EXTERNAL_EMOJIS = 1 << 18
    ADMINISTRATOR = 1 << 3
    USE_APPLICATION_COMMANDS = 1 << 31
    MANAGE_THREADS = 1 << 34
    CREATE_PUBLIC_THREADS = 1 << 35
    CREATE_PRIVATE_THREADS = 1 << 36
    SEND_MESSAGES_IN_THREADS = 1 << 38
    ALL = (1 << 51) - 1

    EVERYONE_DEFAULT = (
        VIEW_CHANNEL
        | SEND_MESSAGES
        | SEND_MESSAGES_IN_THREADS
        | CREATE_PUBLIC_THREADS
        | CREATE_PRIVATE_THREADS
        | EMBED_LINKS
        | ATTACH_FILES
        | ADD_REACTIONS
        | READ_MESSAGE_HISTORY
        | USE_EXTERNAL_EMOJIS
        | USE_APPLICATION_COMMANDS
    )
    BOT_DEFAULT = EVERYONE_DEFAULT | MANAGE_MESSAGES | MANAGE_THREADS


class Intent:
    GUILDS = 1 << 0
    GUILD_MEMBERS = 1 << 1
    GUILD_PRESENCES = 1 << 8
    GUILD_MESSAGES = 1 << 9
    DIRECT_MESSAGES = 1 << 12
    MESSAGE_CONTENT = 1 << 15
    PRIVILEGED = GUILD_MEMBERS | GUILD_PRESENCES | MESSAGE_CONTENT


@dataclass
class User:
    id: int
    username: str
    bot: bool = False
    global_name: str | None = None
    #: The language of the member's Discord client: interactions carry it as ``locale``.
    locale: str = "en-US"

    def to_dict(self) -> Json:
        data: Json = {
            "id": str(self.id),
            "username": self.username,
            "discriminator": "0",
            "global_name": self.global_name,
            "avatar": None,
            "public_flags": 0,
            "flags": 0,
        }
        if self.bot:
            data["bot"] = True
        return data

    @property
    def mention(self) -> str:
        return f"<@{self.id}>"


@dataclass
class Role:
    id: int
    name: str
    permissions: int
    position: int = 0
    managed: bool = False

    def to_dict(self) -> Json:
        return {
            "id": str(self.id),
            "name": self.name,
            "permissions": str(self.permissions),
            "position": self.position,
            "color": 0,
            "colors": {"primary_color": 0, "secondary_color": None, "tertiary_color": None},
            "hoist": False,
            "managed": self.managed,
            "mentionable": False,
            "flags": 0,
        }


@dataclass
class Member:
    user: User
    roles: list[int]
    joined_at: str
    nick: str | None = None

    def to_dict(self, *, with_user: bool = True) -> Json:
        data: Json = {
            "roles": [str(r) for r in self.roles],
            "joined_at": self.joined_at,
            "nick": self.nick,
            "avatar": None,
            "deaf": False,
            "mute": False,
            "pending": False,
            "flags": 0,
            "premium_since": None,
            "communication_disabled_until": None,
        }
        if with_user:
            data["user"] = self.user.to_dict()
        return data


TEXT, DM, PUBLIC_THREAD, PRIVATE_THREAD = 0, 1, 11, 12
THREAD_TYPES = (PUBLIC_THREAD, PRIVATE_THREAD)


@dataclass
class Channel:
    id: int
    type: int
    name: str | None
    guild_id: int | None
    position: int = 0
    parent_id: int | None = None
    owner_id: int | None = None
    recipient: User | None = None
    overwrites: dict[int, tuple[int, int, int]] = field(default_factory=dict)
    created_at: str = ""
    message_ids: list[int] = field(default_factory=list)
    member_ids: set[int] = field(default_factory=set)
    total_messages: int = 0

    @property
    def is_thread(self) -> bool:
        return self.type in THREAD_TYPES

    def to_dict(self) -> Json:
        data: Json = {"id": str(self.id), "type": self.type, "flags": 0}
        data["last_message_id"] = str(self.message_ids[-1]) if self.message_ids else None
        if self.type == DM:
            data["recipients"] = [self.recipient.to_dict()] if self.recipient else []
            return data
        data.update(
            guild_id=str(self.guild_id),
            name=self.name,
            position=self.position,
            parent_id=str(self.parent_id) if self.parent_id else None,
            nsfw=False,
            rate_limit_per_user=0,
        )
        if self.is_thread:
            data.update(
                owner_id=str(self.owner_id),
                message_count=self.total_messages,
                total_message_sent=self.total_messages,
                member_count=len(self.member_ids),
                thread_metadata={
                    "archived": False,
                    "auto_archive_duration": 1440,
                    "archive_timestamp": self.created_at,
                    "locked": False,
                    "create_timestamp": self.created_at,
                    **({"invitable": True} if self.type == PRIVATE_THREAD else {}),
                },
            )
        else:
            data.update(
                topic=None,
                permission_overwrites=[
                    {"id": str(target), "type": kind, "allow": str(allow), "deny": str(deny)}
                    for target, (kind, allow, deny) in self.overwrites.items()
                ],
            )
        return data


@dataclass
class Guild:
    id: int
    name: str
    owner_id: int
    roles: dict[int, Role]
    members: dict[int, Member]
    channel_ids: list[int]
    created_at: str
    premium_tier: int = 0  # server boost level, 0-3: 2 and 3 raise the upload limit
    #: The server's preferred locale (GUILD_CREATE's ``preferred_locale``, interactions'
    #: ``guild_locale``); set it before the bot connects.
    locale: str = "en-US"

    @property
    def everyone(self) -> Role:
        return self.roles[self.id]


@dataclass
class StoredMessage:
    """A message as the fake keeps it; attachment URLs are signed when it is rendered."""

    payload: Json
    ephemeral: bool = False
    interaction_id: int | None = None
    deleted: bool = False

    @property
    def id(self) -> int:
        return int(self.payload["id"])

    @property
    def channel_id(self) -> int:
        return int(self.payload["channel_id"])

    @property
    def author_id(self) -> int:
        return int(self.payload["author"]["id"])

    @property
    def content(self) -> str:
        return str(self.payload.get("content", ""))

    @property
    def components(self) -> list[Json]:
        return list(self.payload.get("components", []))

    @property
    def attachments(self) -> list[Json]:
        return list(self.payload.get("attachments", []))

    @property
    def flags(self) -> int:
        return int(self.payload.get("flags", 0))


def iter_components(components: list[Json]) -> list[Json]:
    """Every component in a tree (action rows, containers, sections, labels), depth first."""
    out: list[Json] = []
    for component in components:
        out.append(component)
        children = list(component.get("components") or [])
        if isinstance(component.get("component"), dict):
            children.append(component["component"])
        if isinstance(component.get("accessory"), dict):
            children.append(component["accessory"])
        out.extend(iter_components(children))
    return out


def compute_permissions(guild: Guild, channel: Channel | None, member: Member) -> int:
    """Discord's algorithm: base roles, then the channel's overwrites (a thread: its parent's)."""
    if member.user.id == guild.owner_id:
        return Perm.ALL
    perms = guild.everyone.permissions
    for role_id in member.roles:
        role = guild.roles.get(role_id)
        if role:
            perms |= role.permissions
    if perms & Perm.ADMINISTRATOR:
        return Perm.ALL
    if channel is None:
        return perms
    overwrites = channel.overwrites
    everyone = overwrites.get(guild.id)
    if everyone:
        perms = (perms & ~everyone[2]) | everyone[1]
    allow = deny = 0
    for role_id in member.roles:
        if role_id in overwrites:
            allow |= overwrites[role_id][1]
            deny |= overwrites[role_id][2]
    perms = (perms & ~deny) | allow
    own = overwrites.get(member.user.id)
    if own:
        perms = (perms & ~own[2]) | own[1]
    return perms
