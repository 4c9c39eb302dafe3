"""REST routes used with the bot token: users, application, commands, channels, messages."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from .models import THREAD_TYPES, Channel, Intent, Json, Perm, StoredMessage, snowflake_time
from .validation import add_error, check_commands, check_message_limits
from .wire import ROUTER, Call, DiscordError
from .world import FileUpload

if TYPE_CHECKING:
    from .server import FakeDiscord

Answer = tuple[int, Any]
NONCE_WINDOW = 120.0


def message_limits(body: Any, errors: Json) -> None:
    if isinstance(body, dict):
        check_message_limits(body, errors)


# --- shared helpers ------------------------------------------------------------------------


def get_channel(fake: FakeDiscord, call: Call) -> Channel:
    channel = fake.channels.get(call.int("channel_id"))
    if channel is None:
        raise DiscordError(10003)
    return channel


def require(fake: FakeDiscord, channel: Channel, needed: int, what: str) -> None:
    have = fake.bot_permissions(channel)
    if not have & Perm.VIEW_CHANNEL:
        raise DiscordError(50001, detail=f"bot cannot view channel {channel.id}")
    missing = needed & ~have
    if missing:
        raise DiscordError(50013, detail=f"{what} needs permission bits {missing:#x}")


def get_message(fake: FakeDiscord, channel: Channel, message_id: int) -> StoredMessage:
    message = fake.messages.get(message_id)
    if message is None or message.deleted or message.ephemeral or message.channel_id != channel.id:
        raise DiscordError(10008)
    return message


def check_file_sizes(files: list[FileUpload], limit: int) -> None:
    for upload in files:
        if len(upload.data) > limit:
            raise DiscordError(
                40005, detail=f"{upload.filename} is {len(upload.data)} bytes, limit {limit}"
            )
    if sum(len(f.data) for f in files) > 25 * 1024 * 1024 and limit <= 25 * 1024 * 1024:
        raise DiscordError(40005, detail="more than 25 MiB in one request")


def resolve_attachments(
    fake: FakeDiscord,
    channel: Channel,
    body: Json,
    files: list[FileUpload],
    existing: list[Json] | None = None,
) -> list[Json]:
    """The attachment list a create/edit body describes: kept ones plus uploaded ``files[n]``."""
    by_index = {f.index: f for f in files}
    kept: list[Json] = []
    uploads: list[FileUpload] = []
    described = body.get("attachments")
    if isinstance(described, list):
        current = {a["id"]: a for a in existing or []}
        for i, item in enumerate(described):
            key = str(item.get("id"))
            if key in current:
                kept.append(current[key])
                continue
            upload = by_index.pop(int(key), None) if key.isdigit() else None
            if upload is None:
                errors: Json = {}
                add_error(errors, ["attachments", i], "ATTACHMENT_NOT_FOUND", "Unknown attachment")
                raise DiscordError(50035, errors)
            upload.filename = item.get("filename") or upload.filename
            upload.description = item.get("description")
            uploads.append(upload)
    elif existing:
        kept = list(existing)
    uploads.extend(by_index.values())
    return kept + fake.store_files(channel, uploads)


def has_body(body: Json, attachments: list[Json]) -> bool:
    keys = ("content", "embeds", "components", "sticker_ids", "poll")
    return bool(attachments) or any(body.get(k) for k in keys)


# --- identity ------------------------------------------------------------------------------


@ROUTER.add("GET", "/users/@me")
async def get_me(fake: FakeDiscord, call: Call) -> Answer:
    return 200, fake.bot_user.to_dict() | {"verified": True, "mfa_enabled": False, "email": None}


def _application_flags(granted: int) -> int:
    """The portal's privileged-intent switches as an unverified application's flags."""
    flags = 0
    if granted & Intent.MESSAGE_CONTENT:
        flags |= 1 << 19  # GATEWAY_MESSAGE_CONTENT_LIMITED
    if granted & Intent.GUILD_MEMBERS:
        flags |= 1 << 15  # GATEWAY_GUILD_MEMBERS_LIMITED
    if granted & Intent.GUILD_PRESENCES:
        flags |= 1 << 13  # GATEWAY_PRESENCE_LIMITED
    return flags


@ROUTER.add("GET", "/oauth2/applications/@me")
async def get_application(fake: FakeDiscord, call: Call) -> Answer:
    owner = fake.guilds[fake.guild.id].members[fake.guild.owner_id].user
    return 200, {
        "id": str(fake.application_id),
        "name": fake.bot_user.username,
        "icon": None,
        "description": "Kontext Bot (fake Discord)",
        "bot_public": False,
        "bot_require_code_grant": False,
        "owner": owner.to_dict(),
        "verify_key": "0" * 64,
        "flags": _application_flags(fake.granted_intents),
        "team": None,
        "summary": "",
        "rpc_origins": [],
        "bot": fake.bot_user.to_dict(),
    }


# --- application commands ------------------------------------------------------------------


def _check_app(fake: FakeDiscord, call: Call) -> None:
    if call.int("application_id") != fake.application_id:
        raise DiscordError(50001, detail="not this bot's application")


def _store_commands(fake: FakeDiscord, body: Any, guild_id: int | None) -> list[Json]:
    stored = []
    for command in body or []:
        item = {
            "type": 1,
            "description": "",
            "options": [],
            "default_member_permissions": None,
            "nsfw": False,
            **command,
            "id": str(fake.ids.next()),
            "application_id": str(fake.application_id),
            "version": str(fake.ids.next()),
        }
        if guild_id is not None:
            item["guild_id"] = str(guild_id)
        stored.append(item)
    return stored


def _command_limits(body: Any, errors: Json) -> None:
    check_commands(body, errors)


@ROUTER.add("GET", "/applications/{application_id}/commands")
async def get_global_commands(fake: FakeDiscord, call: Call) -> Answer:
    _check_app(fake, call)
    return 200, fake.global_commands


@ROUTER.add("PUT", "/applications/{application_id}/commands", limits=_command_limits)
async def put_global_commands(fake: FakeDiscord, call: Call) -> Answer:
    _check_app(fake, call)
    fake.global_commands = _store_commands(fake, call.body, None)
    fake.notify()
    return 200, fake.global_commands


@ROUTER.add("GET", "/applications/{application_id}/guilds/{guild_id}/commands")
async def get_guild_commands(fake: FakeDiscord, call: Call) -> Answer:
    _check_app(fake, call)
    return 200, fake.guild_commands.get(call.int("guild_id"), [])


@ROUTER.add(
    "PUT", "/applications/{application_id}/guilds/{guild_id}/commands", limits=_command_limits
)
async def put_guild_commands(fake: FakeDiscord, call: Call) -> Answer:
    _check_app(fake, call)
    guild_id = call.int("guild_id")
    if guild_id not in fake.guilds:
        raise DiscordError(50001, detail=f"bot is not in guild {guild_id}")
    fake.guild_commands[guild_id] = _store_commands(fake, call.body, guild_id)
    fake.notify()
    return 200, fake.guild_commands[guild_id]


# --- channels and messages -----------------------------------------------------------------


@ROUTER.add("GET", "/channels/{channel_id}")
async def get_channel_route(fake: FakeDiscord, call: Call) -> Answer:
    channel = get_channel(fake, call)
    require(fake, channel, Perm.VIEW_CHANNEL, "viewing a channel")
    return 200, channel.to_dict()


@ROUTER.add("POST", "/channels/{channel_id}/typing")
async def trigger_typing(fake: FakeDiscord, call: Call) -> Answer:
    channel = get_channel(fake, call)
    require(fake, channel, _send_permission(channel), "typing")
    fake.typing.append((channel.id, int(fake.clock.time())))
    return 204, None


def _send_permission(channel: Channel) -> int:
    return Perm.SEND_MESSAGES_IN_THREADS if channel.is_thread else Perm.SEND_MESSAGES


@ROUTER.add("GET", "/channels/{channel_id}/messages")
async def get_messages(fake: FakeDiscord, call: Call) -> Answer:
    channel = get_channel(fake, call)
    require(fake, channel, Perm.READ_MESSAGE_HISTORY, "reading history")
    query = call.request.query
    limit = max(1, min(100, int(query.get("limit", "50"))))
    found = fake.messages_in(channel)
    if "before" in query:
        found = [m for m in found if m.id < int(query["before"])]
    if "after" in query:
        found = [m for m in found if m.id > int(query["after"])][:limit]
    found = list(reversed(found))[:limit]
    return 200, [fake.render_message(m) for m in found]


@ROUTER.add("GET", "/channels/{channel_id}/messages/{message_id}")
async def get_message_route(fake: FakeDiscord, call: Call) -> Answer:
    channel = get_channel(fake, call)
    require(fake, channel, Perm.READ_MESSAGE_HISTORY, "fetching a message")
    return 200, fake.render_message(get_message(fake, channel, call.int("message_id")))


@ROUTER.add("POST", "/channels/{channel_id}/messages", limits=message_limits)
async def create_message(fake: FakeDiscord, call: Call) -> Answer:
    channel = get_channel(fake, call)
    body = call.json
    needed = _send_permission(channel)
    if call.files:
        needed |= Perm.ATTACH_FILES
    reference = None
    ref = body.get("message_reference")
    if isinstance(ref, dict) and ref.get("message_id"):
        needed |= Perm.READ_MESSAGE_HISTORY
    require(fake, channel, needed, "sending this message")
    if isinstance(ref, dict) and ref.get("message_id"):
        target = fake.messages.get(int(ref["message_id"]))
        if target is None or target.deleted or target.ephemeral:
            if ref.get("fail_if_not_exists", True):
                errors: Json = {}
                add_error(
                    errors,
                    ["message_reference"],
                    "MESSAGE_REFERENCE_UNKNOWN_MESSAGE",
                    "Unknown message",
                )
                raise DiscordError(50035, errors)
        else:
            reference = target
    check_file_sizes(call.files, fake.upload_limit(channel))
    if body.get("enforce_nonce") and body.get("nonce") is not None:
        for mid in reversed(channel.message_ids):
            earlier = fake.messages[mid]
            recent = fake.clock.time() - snowflake_time(earlier.id) < NONCE_WINDOW
            same = earlier.payload.get("nonce") == body["nonce"]
            if recent and same and earlier.author_id == fake.bot_user.id:
                return 200, fake.render_message(earlier)
    attachments = resolve_attachments(fake, channel, body, call.files)
    if not has_body(body, attachments):
        raise DiscordError(50006)
    message = fake.create_message(
        channel, fake.bot_user, body, attachments=attachments, reference=reference
    )
    await fake.dispatch_message("MESSAGE_CREATE", message)
    return 200, fake.render_message(message)


@ROUTER.add("PATCH", "/channels/{channel_id}/messages/{message_id}", limits=message_limits)
async def edit_message(fake: FakeDiscord, call: Call) -> Answer:
    channel = get_channel(fake, call)
    message = get_message(fake, channel, call.int("message_id"))
    body = call.json
    if message.author_id != fake.bot_user.id:
        if set(body) - {"flags"}:
            raise DiscordError(50005)
        require(fake, channel, Perm.MANAGE_MESSAGES, "suppressing embeds")
    if call.files:
        require(fake, channel, Perm.ATTACH_FILES, "attaching files")
    check_file_sizes(call.files, fake.upload_limit(channel))
    attachments = resolve_attachments(fake, channel, body, call.files, message.attachments)
    fake.edit_message(message, body, attachments)
    await fake.dispatch_message("MESSAGE_UPDATE", message)
    return 200, fake.render_message(message)


@ROUTER.add("DELETE", "/channels/{channel_id}/messages/{message_id}")
async def delete_message(fake: FakeDiscord, call: Call) -> Answer:
    channel = get_channel(fake, call)
    message = get_message(fake, channel, call.int("message_id"))
    if message.author_id != fake.bot_user.id:
        require(fake, channel, Perm.MANAGE_MESSAGES, "deleting another user's message")
    message.deleted = True
    fake.notify()
    await fake.dispatch_message_delete(message)
    return 204, None


# --- reactions -----------------------------------------------------------------------------


@ROUTER.add("PUT", "/channels/{channel_id}/messages/{message_id}/reactions/{emoji_name}/@me")
async def add_reaction(fake: FakeDiscord, call: Call) -> Answer:
    channel = get_channel(fake, call)
    require(fake, channel, Perm.ADD_REACTIONS | Perm.READ_MESSAGE_HISTORY, "reacting")
    message = get_message(fake, channel, call.int("message_id"))
    emoji = unquote(call.params["emoji_name"])
    fake.reactions.setdefault(message.id, {}).setdefault(emoji, set()).add(fake.bot_user.id)
    fake.notify()
    return 204, None


@ROUTER.add("DELETE", "/channels/{channel_id}/messages/{message_id}/reactions/{emoji_name}/@me")
async def remove_reaction(fake: FakeDiscord, call: Call) -> Answer:
    channel = get_channel(fake, call)
    message = get_message(fake, channel, call.int("message_id"))
    emoji = unquote(call.params["emoji_name"])
    fake.reactions.get(message.id, {}).get(emoji, set()).discard(fake.bot_user.id)
    fake.notify()
    return 204, None


# --- threads -------------------------------------------------------------------------------


@ROUTER.add("POST", "/channels/{channel_id}/messages/{message_id}/threads")
async def thread_from_message(fake: FakeDiscord, call: Call) -> Answer:
    channel = get_channel(fake, call)
    if channel.is_thread or channel.guild_id is None:
        raise DiscordError(50024, detail="threads start from messages in text channels")
    require(fake, channel, Perm.CREATE_PUBLIC_THREADS, "creating a public thread")
    message = get_message(fake, channel, call.int("message_id"))
    if message.id in fake.channels:
        raise DiscordError(160004)
    thread = fake.add_thread(
        channel, str(call.json.get("name")), owner=fake.bot_user, tid=message.id
    )
    await fake.dispatch_channel("THREAD_CREATE", thread, newly_created=True)
    fake.notify()
    return 201, thread.to_dict()


@ROUTER.add("POST", "/channels/{channel_id}/threads")
async def standalone_thread(fake: FakeDiscord, call: Call) -> Answer:
    channel = get_channel(fake, call)
    if channel.is_thread or channel.guild_id is None:
        raise DiscordError(50024, detail="threads are created in text channels")
    private = call.json.get("type", 12) == 12
    needed = Perm.CREATE_PRIVATE_THREADS if private else Perm.CREATE_PUBLIC_THREADS
    require(fake, channel, needed, f"creating a {'private' if private else 'public'} thread")
    thread = fake.add_thread(
        channel, str(call.json.get("name")), owner=fake.bot_user, private=private
    )
    await fake.dispatch_channel("THREAD_CREATE", thread, newly_created=True)
    fake.notify()
    return 201, thread.to_dict()


@ROUTER.add("PUT", "/channels/{channel_id}/thread-members/@me")
async def join_thread(fake: FakeDiscord, call: Call) -> Answer:
    channel = get_channel(fake, call)
    if channel.type not in THREAD_TYPES:
        raise DiscordError(50024)
    channel.member_ids.add(fake.bot_user.id)
    return 204, None


# --- lookups a bot may make ----------------------------------------------------------------


@ROUTER.add("GET", "/gateway")
async def get_gateway(fake: FakeDiscord, call: Call) -> Answer:
    return 200, {"url": fake.gateway_url}


@ROUTER.add("GET", "/gateway/bot")
async def get_gateway_bot(fake: FakeDiscord, call: Call) -> Answer:
    total = 1000
    limit = {
        "total": total,
        "remaining": max(0, total - fake.gateway.session_starts),
        "reset_after": 14_400_000,
        "max_concurrency": fake.max_concurrency,
    }
    shards = max(1, -(-len(fake.guilds) // fake.guilds_per_shard))
    return 200, {"url": fake.gateway_url, "shards": shards, "session_start_limit": limit}


@ROUTER.add("GET", "/users/{user_id}")
async def get_user(fake: FakeDiscord, call: Call) -> Answer:
    user = fake.users.get(call.int("user_id"))
    if user is None:
        raise DiscordError(10013)
    return 200, user.to_dict()


@ROUTER.add("POST", "/users/@me/channels")
async def create_dm(fake: FakeDiscord, call: Call) -> Answer:
    user = fake.users.get(int(call.json.get("recipient_id") or 0))
    if user is None or user.bot:
        raise DiscordError(50007)
    return 200, fake.dm_channel(user).to_dict()


@ROUTER.add("GET", "/guilds/{guild_id}/roles")
async def get_roles(fake: FakeDiscord, call: Call) -> Answer:
    guild = fake.guilds.get(call.int("guild_id"))
    if guild is None:
        raise DiscordError(10004)
    return 200, [role.to_dict() for role in guild.roles.values()]


@ROUTER.add("GET", "/guilds/{guild_id}/members/{user_id}")
async def get_member(fake: FakeDiscord, call: Call) -> Answer:
    guild = fake.guilds.get(call.int("guild_id"))
    if guild is None:
        raise DiscordError(10004)
    member = guild.members.get(call.int("user_id"))
    if member is None:
        raise DiscordError(10007)
    return 200, member.to_dict()
