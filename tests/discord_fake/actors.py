"""Humans in the fake guild: they run commands, click buttons, submit modals and post messages.

Interactions reach the bot as INTERACTION_CREATE over the gateway, exactly as from Discord;
each helper returns an :class:`InteractionHandle` whose coroutines wait (on events, never
sleeps) for what the bot does with it.
"""

from __future__ import annotations

import io
import secrets
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .models import Channel, Json, StoredMessage, User
from .world import FileUpload, InteractionState

if TYPE_CHECKING:
    from .server import FakeDiscord

LOADING = 1 << 7
SUB_COMMAND, SUB_COMMAND_GROUP = 1, 2
USER_OPTION, CHANNEL_OPTION, ROLE_OPTION, ATTACHMENT_OPTION = 6, 7, 8, 11


def png_file(
    filename: str = "image.png", *, width: int = 64, height: int = 48, color: str = "red"
) -> FileUpload:
    """A small real PNG, handy as an attachment."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buffer, format="PNG")
    return FileUpload(filename, buffer.getvalue(), "image/png", width=width, height=height)


class InteractionHandle:
    """One interaction sent to the bot; await its outcome."""

    def __init__(self, fake: FakeDiscord, state: InteractionState) -> None:
        self.fake = fake
        self.state = state

    @property
    def id(self) -> int:
        return self.state.id

    @property
    def original(self) -> StoredMessage | None:
        mid = self.state.original_message_id
        return self.fake.messages.get(mid) if mid else None

    @property
    def followups(self) -> list[StoredMessage]:
        return [self.fake.messages[m] for m in self.state.followup_ids]

    async def acknowledged(self, *, timeout: float = 5.0) -> int:  # noqa: ASYNC109
        """Wait for the first response; return its callback type (4, 5, 6, 7 or 9)."""
        await self.fake.wait_for(
            lambda: self.state.acknowledged, timeout=timeout, what=f"an answer to {self.id}"
        )
        assert self.state.response_type is not None
        return self.state.response_type

    async def response(self, *, timeout: float = 5.0) -> StoredMessage:  # noqa: ASYNC109
        """Wait for the response message, past any "thinking..." deferral, and return it."""

        def ready() -> StoredMessage | None:
            message = self.original
            if message is None or message.flags & LOADING:
                return None
            return message

        return await self.fake.wait_for(ready, timeout=timeout, what=f"the response to {self.id}")

    async def modal(self, *, timeout: float = 5.0) -> Json:  # noqa: ASYNC109
        """Wait for a type-9 modal answer and return its data."""
        return await self.fake.wait_for(
            lambda: self.state.modal, timeout=timeout, what=f"a modal for {self.id}"
        )

    async def choices(self, *, timeout: float = 5.0) -> list[Json]:  # noqa: ASYNC109
        """Wait for the answer to an autocomplete interaction and return its choices."""
        found = await self.fake.wait_for(
            lambda: self.state.choices, timeout=timeout, what=f"choices for {self.id}"
        )
        return list(found)

    async def followup(self, index: int = 0, *, timeout: float = 5.0) -> StoredMessage:  # noqa: ASYNC109
        """Wait for the ``index``-th follow-up message."""
        return await self.fake.wait_for(
            lambda: self.followups[index] if len(self.state.followup_ids) > index else None,
            timeout=timeout,
            what=f"follow-up {index} of {self.id}",
        )


class Actor:
    """A human member of a fake guild."""

    def __init__(self, fake: FakeDiscord, user: User) -> None:
        self.fake = fake
        self.user = user

    def __repr__(self) -> str:
        return f"<Actor {self.user.username} {self.user.id}>"

    @property
    def mention(self) -> str:
        return self.user.mention

    def _channel(self, channel: Channel | str | int | None) -> Channel:
        if isinstance(channel, Channel):
            return channel
        return self.fake.channel(channel if channel is not None else "general")

    # --- messages -----------------------------------------------------------------------------

    async def send(
        self,
        channel: Channel | str | int | None = None,
        content: str = "",
        *,
        files: Sequence[FileUpload] = (),
        reply_to: StoredMessage | None = None,
        mention_author: bool = True,
        embeds: Sequence[Json] = (),
    ) -> StoredMessage:
        """Post a message (a reply if ``reply_to``; ``mention_author`` pings its author)."""
        target = self._channel(reply_to.channel_id if reply_to else channel)
        attachments = self.fake.store_files(target, files)
        body: Json = {"content": content, "embeds": list(embeds)}
        message = self.fake.create_message(
            target,
            self.user,
            body,
            attachments=attachments,
            reference=reply_to,
            ping_reply=mention_author,
        )
        await self.fake.dispatch_message("MESSAGE_CREATE", message)
        return message

    async def send_dm(
        self, content: str = "", *, files: Sequence[FileUpload] = ()
    ) -> StoredMessage:
        """Post a direct message to the bot."""
        return await self.send(self.fake.dm_channel(self.user), content, files=files)

    # --- interactions -----------------------------------------------------------------------

    async def _interact(
        self,
        kind: int,
        data: Json,
        channel: Channel,
        message: StoredMessage | None = None,
        *,
        rendered: Json | None = None,
    ) -> InteractionHandle:
        fake = self.fake
        guild = fake.guild_of(channel)
        iid = fake.ids.next()
        token = f"aW50ZXJhY3Rpb246{iid}:{secrets.token_urlsafe(48)}"
        payload: Json = {
            "id": str(iid),
            "application_id": str(fake.application_id),
            "type": kind,
            "data": data,
            "channel_id": str(channel.id),
            "channel": channel.to_dict(),
            "token": token,
            "version": 1,
            "app_permissions": str(fake.bot_permissions(channel)),
            "locale": self.user.locale,
            "entitlements": [],
            "attachment_size_limit": fake.upload_limit(channel),
        }
        if guild is not None:
            member = guild.members[self.user.id]
            perms = fake.permissions(self.user.id, channel)
            payload.update(
                guild_id=str(guild.id),
                guild={"id": str(guild.id), "locale": guild.locale, "features": []},
                guild_locale=guild.locale,
                member=member.to_dict() | {"permissions": str(perms)},
                authorizing_integration_owners={"0": str(guild.id)},
                context=0,
            )
        else:
            payload.update(
                user=self.user.to_dict(),
                authorizing_integration_owners={"1": str(self.user.id)},
                context=1,
            )
        if message is not None:
            payload["message"] = rendered or fake.render_message(message)
        state = InteractionState(
            iid,
            token,
            kind,
            payload,
            channel.id,
            guild.id if guild else None,
            self.user.id,
            fake.clock.time(),
            message_id=message.id if message else None,
        )
        fake.interactions[iid] = state
        await fake.gateway.dispatch("INTERACTION_CREATE", payload)
        fake.notify()
        return InteractionHandle(fake, state)

    async def run_command(
        self, name: str, /, *, in_channel: Channel | str | int | None = None, **options: Any
    ) -> InteractionHandle:
        """Run a registered slash command in ``in_channel`` (default: #general).

        ``name`` may be ``"group sub"``.
        Options are given by name: strings, numbers, booleans, an :class:`Actor` or ``User``
        for user options, a ``Channel`` for channel options, a :class:`FileUpload` for
        attachment options (uploaded to the fake CDN and resolved like Discord does).
        """
        target = self._channel(in_channel)
        parts = name.split()
        command = self.fake.find_command(parts[0], 1, target.guild_id)
        resolved: Json = {}
        schema = command.get("options") or []
        for sub in parts[1:]:
            schema = next(
                (o.get("options") or [] for o in schema if o["name"] == sub and o["type"] < 3), None
            )
            if schema is None:
                raise AssertionError(f"no subcommand {sub!r} in {name!r}")
        built = self._options(schema, dict(options), target, resolved)
        for sub, kind in reversed(
            list(zip(parts[1:], self._sub_kinds(command, parts[1:]), strict=True))
        ):
            built = [{"type": kind, "name": sub, "options": built}]
        data: Json = {"id": command["id"], "name": command["name"], "type": 1, "options": built}
        if "guild_id" in command:
            data["guild_id"] = command["guild_id"]
        if resolved:
            data["resolved"] = resolved
        return await self._interact(2, data, target)

    async def autocomplete(
        self,
        name: str,
        /,
        *,
        focused: str,
        in_channel: Channel | str | int | None = None,
        **options: Any,
    ) -> InteractionHandle:
        """Type into option ``focused`` of slash command ``name`` (its value among
        ``options``, as typed so far): the autocomplete interaction Discord sends."""
        target = self._channel(in_channel)
        command = self.fake.find_command(name, 1, target.guild_id)
        schema = {o["name"]: o for o in command.get("options") or []}
        if not schema.get(focused, {}).get("autocomplete"):
            raise AssertionError(f"option {focused!r} of {name!r} has no autocomplete")
        built = [
            {
                "name": key,
                "type": schema[key]["type"],
                "value": str(value),
                **({"focused": True} if key == focused else {}),
            }
            for key, value in options.items()
        ]
        data: Json = {"id": command["id"], "name": command["name"], "type": 1, "options": built}
        if "guild_id" in command:
            data["guild_id"] = command["guild_id"]
        return await self._interact(4, data, target)

    @staticmethod
    def _sub_kinds(command: Json, parts: list[str]) -> list[int]:
        kinds, schema = [], command.get("options") or []
        for sub in parts:
            option = next(o for o in schema if o["name"] == sub)
            kinds.append(option["type"])
            schema = option.get("options") or []
        return kinds

    def _options(
        self, schema: list[Json], values: dict[str, Any], channel: Channel, resolved: Json
    ) -> list[Json]:
        built = []
        for option in schema:
            if option["name"] not in values:
                if option.get("required"):
                    raise AssertionError(f"required option {option['name']!r} missing")
                continue
            value = values.pop(option["name"])
            built.append(
                {
                    "name": option["name"],
                    "type": option["type"],
                    "value": self._resolve(option["type"], value, channel, resolved),
                }
            )
        if values:
            raise AssertionError(f"unknown options {sorted(values)}; the command has {schema}")
        return built

    def _resolve(self, kind: int, value: Any, channel: Channel, resolved: Json) -> Any:
        fake = self.fake
        if kind == ATTACHMENT_OPTION:
            if not isinstance(value, FileUpload):
                raise AssertionError("attachment options take a FileUpload")
            attachment = fake.store_files(channel, [value])[0]
            attachment["url"] = attachment["proxy_url"] = fake.cdn.url(int(attachment["id"]))
            attachment["ephemeral"] = True
            resolved.setdefault("attachments", {})[attachment["id"]] = attachment
            return attachment["id"]
        if kind == USER_OPTION:
            user = value.user if isinstance(value, Actor) else value
            resolved.setdefault("users", {})[str(user.id)] = user.to_dict()
            guild = fake.guild_of(channel)
            if guild and user.id in guild.members:
                member = guild.members[user.id].to_dict(with_user=False)
                member["permissions"] = str(fake.permissions(user.id, channel))
                resolved.setdefault("members", {})[str(user.id)] = member
            return str(user.id)
        if kind == CHANNEL_OPTION:
            target = value if isinstance(value, Channel) else fake.channel(value)
            partial = target.to_dict() | {
                "permissions": str(fake.permissions(self.user.id, target))
            }
            resolved.setdefault("channels", {})[str(target.id)] = partial
            return str(target.id)
        if kind == ROLE_OPTION:
            guild = fake.guild_of(channel)
            if guild is None or value not in guild.roles.values():
                raise AssertionError("role options take a Role of the channel's guild")
            resolved.setdefault("roles", {})[str(value.id)] = value.to_dict()
            return str(value.id)
        return value

    async def use_message_command(self, name: str, message: StoredMessage) -> InteractionHandle:
        """Run a message context-menu command (type 3) on ``message``."""
        channel = self.fake.channels[message.channel_id]
        command = self.fake.find_command(name, 3, channel.guild_id)
        rendered = self.fake.render_message(message)
        data: Json = {
            "id": command["id"],
            "name": command["name"],
            "type": 3,
            "target_id": str(message.id),
            "resolved": {"messages": {str(message.id): rendered}},
        }
        return await self._interact(2, data, channel)

    async def use_user_command(self, name: str, user: User | Actor) -> InteractionHandle:
        """Run a user context-menu command (type 2) on ``user``."""
        target = user.user if isinstance(user, Actor) else user
        channel = self._channel(None)
        command = self.fake.find_command(name, 2, channel.guild_id)
        resolved: Json = {}
        self._resolve(USER_OPTION, target, channel, resolved)
        data: Json = {
            "id": command["id"],
            "name": command["name"],
            "type": 2,
            "target_id": str(target.id),
            "resolved": resolved,
        }
        return await self._interact(2, data, channel)

    async def click(self, message: StoredMessage, label_or_custom_id: str) -> InteractionHandle:
        """Click the button with this label or custom_id on ``message``."""
        button = self.fake.find_button(message, label_or_custom_id)
        if button.get("disabled"):
            raise AssertionError(f"button {label_or_custom_id!r} is disabled")
        if "custom_id" not in button:
            raise AssertionError(f"button {label_or_custom_id!r} is a link button")
        data = {"custom_id": button["custom_id"], "component_type": 2}
        return await self._interact(3, data, self.fake.channels[message.channel_id], message)

    async def forge_click(
        self,
        message: StoredMessage,
        custom_id: str,
        *,
        in_channel: Channel | str | int | None = None,
    ) -> InteractionHandle:
        """A press of a button ``custom_id`` on ``message``, as a modified client could send it:
        the button stands in the message as sent along with the interaction, and the
        interaction may come from another channel (and guild) than the message's."""
        channel = (
            self._channel(in_channel)
            if in_channel is not None
            else self.fake.channels[message.channel_id]
        )
        rendered = self.fake.render_message(message)
        button = {"type": 2, "style": 2, "label": "forged", "custom_id": custom_id}
        rendered["components"] = [{"type": 1, "components": [button]}]
        data = {"custom_id": custom_id, "component_type": 2}
        return await self._interact(3, data, channel, message, rendered=rendered)

    async def forge_modal(
        self,
        custom_id: str,
        values: Mapping[str, str],
        *,
        in_channel: Channel | str | int | None = None,
    ) -> InteractionHandle:
        """A modal submission with any ``custom_id`` and text input values (by custom_id), as
        a modified client could send it without the bot having opened that modal."""
        components = [
            {"type": 1, "components": [{"type": 4, "custom_id": key, "value": value}]}
            for key, value in values.items()
        ]
        data = {"custom_id": custom_id, "components": components}
        return await self._interact(5, data, self._channel(in_channel))

    async def submit_modal(
        self, values: Mapping[str, str], *, opened_by: InteractionHandle | None = None
    ) -> InteractionHandle:
        """Fill and submit the modal the bot opened for this member (the latest, by default).

        ``values`` maps a text input's custom_id or label to its value.
        """
        state = opened_by.state if opened_by else self._open_modal()
        modal = state.modal
        if modal is None or state.modal_submitted:
            raise AssertionError("no open modal to submit")
        remaining = dict(values)
        components = [self._fill(top, remaining) for top in modal.get("components", [])]
        if remaining:
            raise AssertionError(f"modal has no text inputs {sorted(remaining)}")
        state.modal_submitted = True
        data = {"custom_id": modal["custom_id"], "components": [c for c in components if c]}
        channel = self.fake.channels[state.channel_id]
        message = self.fake.messages.get(state.message_id) if state.message_id else None
        return await self._interact(5, data, channel, message)

    def _open_modal(self) -> InteractionState:
        for state in reversed(list(self.fake.interactions.values())):
            if state.user_id == self.user.id and state.modal and not state.modal_submitted:
                return state
        raise AssertionError(f"no open modal for {self.user.username}")

    @staticmethod
    def _fill(top: Json, values: dict[str, str]) -> Json | None:
        def answer(item: Json, label: str | None) -> Json:
            keys = [item.get("custom_id"), item.get("label"), label]
            key = next((k for k in keys if k is not None and k in values), None)
            value = values.pop(key) if key is not None else item.get("value") or ""
            if item.get("required", True) and not value:
                raise AssertionError(f"required text input {item.get('custom_id')!r} left empty")
            return {"type": 4, "custom_id": item["custom_id"], "value": value}

        if top.get("type") == 1:
            return {"type": 1, "components": [answer(c, None) for c in top.get("components", [])]}
        if top.get("type") == 18 and top.get("component", {}).get("type") == 4:
            return {"type": 18, "component": answer(top["component"], top.get("label"))}
        return None
