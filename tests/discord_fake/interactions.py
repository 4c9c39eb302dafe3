"""Interaction callbacks and the interaction webhook (follow-ups, ``@original``) routes.

Discord's rules enforced here: the first response within ``fake.ack_deadline`` (3 s) or 10062;
one acknowledgement only (40060); the token lives ``fake.token_lifetime`` (15 min) then 50027;
callback types must suit the interaction type; files within ``attachment_size_limit``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .models import Json, StoredMessage
from .rest import Answer, check_file_sizes, has_body, resolve_attachments
from .validation import add_error, check_message_limits, check_modal_limits
from .wire import ROUTER, Call, DiscordError
from .world import InteractionState

if TYPE_CHECKING:
    from .server import FakeDiscord

PING, COMMAND, COMPONENT, AUTOCOMPLETE, MODAL_SUBMIT = 1, 2, 3, 4, 5
MESSAGE, DEFERRED_MESSAGE, DEFERRED_UPDATE, UPDATE_MESSAGE = 4, 5, 6, 7
AUTOCOMPLETE_RESULT, MODAL = 8, 9
EPHEMERAL, LOADING = 1 << 6, 1 << 7

# interaction type -> callback types Discord accepts for it
ALLOWED_CALLBACKS = {
    PING: {1},
    COMMAND: {MESSAGE, DEFERRED_MESSAGE, MODAL},
    COMPONENT: {MESSAGE, DEFERRED_MESSAGE, DEFERRED_UPDATE, UPDATE_MESSAGE, MODAL},
    AUTOCOMPLETE: {AUTOCOMPLETE_RESULT},
    MODAL_SUBMIT: {MESSAGE, DEFERRED_MESSAGE, DEFERRED_UPDATE, UPDATE_MESSAGE},
}


def _callback_limits(body: Any, errors: Json) -> None:
    if not isinstance(body, dict) or not isinstance(body.get("data"), dict):
        return
    if body.get("type") in (MESSAGE, UPDATE_MESSAGE):
        nested: Json = {}
        check_message_limits(body["data"], nested)
        if nested:
            errors.setdefault("data", {}).update(nested)
    elif body.get("type") == MODAL:
        check_modal_limits(body["data"], errors)
    elif body.get("type") == AUTOCOMPLETE_RESULT:
        _autocomplete_limits(body["data"], errors)


def _autocomplete_limits(data: Json, errors: Json) -> None:
    """At most 25 choices, each a name of 1-100 characters and a value (a string of at
    most 100 characters, or a number)."""
    choices = data.get("choices")
    if not isinstance(choices, list):
        add_error(errors, ["data", "choices"], "BASE_TYPE_REQUIRED", "This field is required")
        return
    if len(choices) > 25:
        add_error(errors, ["data", "choices"], "BASE_TYPE_BAD_LENGTH", "Must be 25 or fewer")
    for i, choice in enumerate(choices):
        name = choice.get("name") if isinstance(choice, dict) else None
        value = choice.get("value") if isinstance(choice, dict) else None
        if not isinstance(name, str) or not 1 <= len(name) <= 100:
            add_error(
                errors,
                ["data", "choices", i, "name"],
                "BASE_TYPE_BAD_LENGTH",
                "Must be between 1 and 100 in length.",
            )
        if (isinstance(value, str) and len(value) > 100) or not isinstance(
            value, str | int | float
        ):
            add_error(
                errors,
                ["data", "choices", i, "value"],
                "BASE_TYPE_BAD_LENGTH",
                "Must be a string of 100 or fewer in length, or a number.",
            )


def _message_limits(body: Any, errors: Json) -> None:
    if isinstance(body, dict):
        check_message_limits(body, errors)


def _interaction_by_token(fake: FakeDiscord, call: Call) -> InteractionState:
    token = call.params["webhook_token"]
    if call.int("webhook_id") != fake.application_id:
        raise DiscordError(10015, detail="webhook id is not the application id")
    found = next((i for i in fake.interactions.values() if i.token == token), None)
    if found is None:
        raise DiscordError(10015, detail="no interaction has this token")
    age = fake.clock.time() - found.created_at
    if age > fake.token_lifetime:
        raise DiscordError(50027, detail=f"token is {age:.0f}s old, lifetime {fake.token_lifetime}")
    if not found.acknowledged:
        raise DiscordError(10015, detail="the interaction was not acknowledged yet")
    return found


def _bot_message_extra(fake: FakeDiscord, interaction: InteractionState) -> Json:
    user = fake.users[interaction.user_id]
    data = interaction.payload.get("data") or {}
    metadata: Json = {
        "id": str(interaction.id),
        "type": interaction.type,
        "user": user.to_dict(),
        "authorizing_integration_owners": {"0": str(interaction.guild_id or 0)},
    }
    if interaction.type == COMMAND:
        metadata.update(name=data.get("name"), command_type=data.get("type", 1))
    if interaction.message_id:
        metadata["interacted_message_id"] = str(interaction.message_id)
    return {
        "webhook_id": str(fake.application_id),
        "application_id": str(fake.application_id),
        "interaction_metadata": metadata,
        "interaction": {
            "id": str(interaction.id),
            "type": interaction.type,
            "name": data.get("name", ""),
            "user": user.to_dict(),
        },
    }


def _message_type(interaction: InteractionState) -> int:
    if interaction.type == COMMAND:
        return 20 if (interaction.payload["data"].get("type", 1) == 1) else 23
    return 0  # component and modal answers are plain messages with interaction_metadata


async def _post_message(
    fake: FakeDiscord, interaction: InteractionState, body: Json, call: Call, *, flags: int = 0
) -> StoredMessage:
    channel = fake.channels[interaction.channel_id]
    check_file_sizes(call.files, int(interaction.payload["attachment_size_limit"]))
    attachments = resolve_attachments(fake, channel, body, call.files)
    if not flags & LOADING and not has_body(body, attachments):
        raise DiscordError(50006)
    body = {**body, "flags": (body.get("flags") or 0) | flags}
    ephemeral = bool(body["flags"] & EPHEMERAL)
    message = fake.create_message(
        channel,
        fake.bot_user,
        body,
        attachments=attachments,
        msg_type=_message_type(interaction),
        extra=_bot_message_extra(fake, interaction),
        ephemeral=ephemeral,
        interaction_id=interaction.id,
    )
    await fake.dispatch_message("MESSAGE_CREATE", message)
    return message


async def _edit(
    fake: FakeDiscord,
    interaction: InteractionState,
    message: StoredMessage,
    call: Call,
    body: Json | None = None,
) -> None:
    channel = fake.channels[message.channel_id]
    check_file_sizes(call.files, int(interaction.payload["attachment_size_limit"]))
    body = dict(call.json if body is None else body)
    attachments = resolve_attachments(fake, channel, body, call.files, message.attachments)
    if message.flags & LOADING:
        body["flags"] = message.flags & ~LOADING | (body.get("flags") or 0)
    fake.edit_message(message, body, attachments)
    await fake.dispatch_message("MESSAGE_UPDATE", message)


@ROUTER.add(
    "POST",
    "/interactions/{interaction_id}/{interaction_token}/callback",
    bot_auth=False,
    limits=_callback_limits,
)
async def interaction_callback(fake: FakeDiscord, call: Call) -> Answer:
    interaction = fake.interactions.get(call.int("interaction_id"))
    if interaction is None or interaction.token != call.params["interaction_token"]:
        raise DiscordError(10062, detail="no such interaction id/token")
    if interaction.acknowledged or interaction.claimed:
        raise DiscordError(40060)
    age = fake.clock.time() - interaction.created_at
    if age > fake.ack_deadline:
        raise DiscordError(
            10062, detail=f"first response after {age:.2f}s (> {fake.ack_deadline}s)"
        )
    kind = call.json.get("type")
    allowed = ALLOWED_CALLBACKS[interaction.type]
    if kind in (UPDATE_MESSAGE, DEFERRED_UPDATE):
        allowed = allowed if interaction.message_id else allowed - {kind}
    if kind not in allowed:
        errors: Json = {}
        add_error(
            errors,
            ["type"],
            "INTERACTION_RESPONSE_TYPE_INVALID",
            f"Callback type {kind} is invalid for interaction type {interaction.type}",
        )
        raise DiscordError(50035, errors)
    interaction.claimed = True  # from now on a concurrent second answer gets 40060
    try:
        message = await _apply_callback(fake, interaction, kind, call)
    except BaseException:
        interaction.claimed = False
        raise
    interaction.response_type = kind
    interaction.original_message_id = message.id if message else None
    fake.notify()
    if not call.flag("with_response"):
        return 204, None
    summary: Json = {"id": str(interaction.id), "type": interaction.type}
    resource: Json = {"type": kind}
    if message is not None:
        summary.update(
            response_message_id=str(message.id),
            response_message_loading=bool(message.flags & LOADING),
            response_message_ephemeral=message.ephemeral,
        )
        resource["message"] = fake.render_message(message)
    return 200, {"interaction": summary, "resource": resource}


async def _apply_callback(
    fake: FakeDiscord, interaction: InteractionState, kind: int, call: Call
) -> StoredMessage | None:
    data = call.json.get("data") or {}
    if kind == MESSAGE:
        return await _post_message(fake, interaction, data, call)
    if kind == DEFERRED_MESSAGE:
        flags = LOADING | ((data.get("flags") or 0) & EPHEMERAL)
        return await _post_message(fake, interaction, {}, call, flags=flags)
    if kind in (DEFERRED_UPDATE, UPDATE_MESSAGE):
        assert interaction.message_id is not None
        message = fake.messages[interaction.message_id]
        if kind == UPDATE_MESSAGE:
            await _edit(fake, interaction, message, call, data)
        return message
    if kind == AUTOCOMPLETE_RESULT:
        interaction.choices = list(data.get("choices") or [])
        return None
    interaction.modal = data  # MODAL
    return None


def _own_message(
    fake: FakeDiscord, interaction: InteractionState, message_id: str
) -> StoredMessage:
    if message_id == "@original":
        mid = interaction.original_message_id
    else:
        mid = int(message_id) if message_id.isdigit() else None
        if mid not in (*interaction.followup_ids, interaction.original_message_id):
            mid = None
    message = fake.messages.get(mid) if mid else None
    if message is None or message.deleted:
        raise DiscordError(10008)
    return message


@ROUTER.add(
    "POST", "/webhooks/{webhook_id}/{webhook_token}", bot_auth=False, limits=_message_limits
)
async def followup(fake: FakeDiscord, call: Call) -> Answer:
    interaction = _interaction_by_token(fake, call)
    original = (
        fake.messages.get(interaction.original_message_id)
        if interaction.original_message_id
        else None
    )
    if (
        interaction.response_type == DEFERRED_MESSAGE
        and original is not None
        and original.flags & LOADING
    ):
        # Discord: the first follow-up after a deferral fills the "thinking" message.
        await _edit(fake, interaction, original, call)
        message = original
    else:
        message = await _post_message(fake, interaction, call.json, call)
        interaction.followup_ids.append(message.id)
    fake.notify()
    if not call.flag("wait"):
        return 204, None
    return 200, fake.render_message(message)


@ROUTER.add("GET", "/webhooks/{webhook_id}/{webhook_token}/messages/{message_id}", bot_auth=False)
async def get_webhook_message(fake: FakeDiscord, call: Call) -> Answer:
    interaction = _interaction_by_token(fake, call)
    message = _own_message(fake, interaction, call.params.get("message_id", "@original"))
    return 200, fake.render_message(message)


@ROUTER.add(
    "PATCH",
    "/webhooks/{webhook_id}/{webhook_token}/messages/{message_id}",
    bot_auth=False,
    limits=_message_limits,
)
async def edit_webhook_message(fake: FakeDiscord, call: Call) -> Answer:
    interaction = _interaction_by_token(fake, call)
    message = _own_message(fake, interaction, call.params.get("message_id", "@original"))
    await _edit(fake, interaction, message, call)
    return 200, fake.render_message(message)


@ROUTER.add(
    "DELETE", "/webhooks/{webhook_id}/{webhook_token}/messages/{message_id}", bot_auth=False
)
async def delete_webhook_message(fake: FakeDiscord, call: Call) -> Answer:
    interaction = _interaction_by_token(fake, call)
    message = _own_message(fake, interaction, call.params.get("message_id", "@original"))
    message.deleted = True
    fake.notify()
    if not message.ephemeral:
        await fake.dispatch_message_delete(message)
    return 204, None


# Register the spec's literal @original templates too, so the request log and the spec
# validator see ".../messages/@original" (fewest parameters wins the match).
for _method, _handler, _limits in (
    ("GET", get_webhook_message, None),
    ("PATCH", edit_webhook_message, _message_limits),
    ("DELETE", delete_webhook_message, None),
):
    ROUTER.add(
        _method,
        "/webhooks/{webhook_id}/{webhook_token}/messages/@original",
        bot_auth=False,
        limits=_limits,
    )(_handler)
