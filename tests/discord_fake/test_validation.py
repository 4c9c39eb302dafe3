"""The spec validator and the docs-only limits, without a bot."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
import pytest

from .server import FakeDiscord
from .validation import (
    REQUIRE_ENV,
    SpecMissingError,
    SpecValidator,
    check_commands,
    check_message_limits,
    check_modal_limits,
    coerce_snowflakes,
    load_spec,
    spec_path,
)

MESSAGES = "/channels/{channel_id}/messages"
CALLBACK = "/interactions/{interaction_id}/{interaction_token}/callback"


@pytest.fixture
def spec(discord_spec: SpecValidator | None) -> SpecValidator:
    if discord_spec is None:
        pytest.skip(f"no Discord OpenAPI spec at {spec_path()}: spec checks not run")
    return discord_spec


def _buttons(n: int, prefix: str = "b") -> dict[str, Any]:
    return {
        "type": 1,
        "components": [
            {"type": 2, "style": 1, "label": str(i), "custom_id": f"{prefix}{i}"} for i in range(n)
        ],
    }


def test_spec_is_loaded_once_and_knows_the_routes(spec: SpecValidator) -> None:
    assert load_spec() is spec
    assert spec.knows(MESSAGES) and spec.knows(CALLBACK)
    assert spec.validate("POST", MESSAGES, {"content": "hi"}) == {}
    assert spec.validate("GET", "/users/@me", None) == {}


def test_spec_catches_what_only_the_spec_knows(spec: SpecValidator) -> None:
    errors = spec.validate("POST", MESSAGES, {"embeds": [{"title": "t" * 257}]})
    assert errors["embeds"]["0"]["title"]["_errors"][0]["code"] == "BASE_TYPE_MAX_LENGTH"
    errors = spec.validate("POST", MESSAGES, {"content": 5})
    assert "content" in errors


def test_numbers_for_snowflakes_are_accepted(spec: SpecValidator) -> None:
    body = {
        "content": "x",
        "attachments": [{"id": 0, "filename": "a.png"}],
        "allowed_mentions": {"parse": [], "users": [1234567890123456789]},
    }
    assert spec.validate("POST", MESSAGES, body) == {}
    assert coerce_snowflakes(body)["attachments"][0]["id"] == "0"
    assert coerce_snowflakes({"flags": 64}) == {"flags": 64}


def test_interaction_callback_bodies(spec: SpecValidator) -> None:
    modal = {
        "custom_id": "m",
        "title": "Remix",
        "components": [
            {"type": 1, "components": [{"type": 4, "custom_id": "p", "label": "P", "style": 1}]}
        ],
    }
    assert spec.validate("POST", CALLBACK, {"type": 9, "data": modal}) == {}
    assert spec.validate("POST", CALLBACK, {"type": 5}) == {}
    assert spec.validate("POST", CALLBACK, {"type": 4, "data": {"content": "ok"}}) == {}


def test_docs_limits_for_messages() -> None:
    errors: dict[str, Any] = {}
    check_message_limits({"content": "x" * 2001}, errors)
    assert errors["content"]["_errors"][0]["code"] == "BASE_TYPE_MAX_LENGTH"
    errors = {}
    check_message_limits({"content": "x" * 2000, "components": [_buttons(5)]}, errors)
    assert errors == {}
    check_message_limits({"components": [_buttons(6)]}, errors)
    assert "_errors" in errors["components"]["0"]["components"]
    errors = {}
    rows = [_buttons(1, prefix=f"r{i}-") for i in range(6)]
    check_message_limits({"components": rows}, errors)
    assert "_errors" in errors["components"]
    errors = {}
    check_message_limits({"components": [_buttons(2, "same"), _buttons(2, "same")]}, errors)
    duplicate = errors["components"]["1"]["components"]["0"]["custom_id"]["_errors"][0]
    assert duplicate["code"] == "COMPONENT_CUSTOM_ID_DUPLICATED"
    errors = {}
    long_id = {"type": 1, "components": [{"type": 2, "style": 1, "custom_id": "c" * 101}]}
    check_message_limits({"components": [long_id]}, errors)
    assert errors["components"]["0"]["components"]["0"]["custom_id"]
    errors = {}
    embeds = [{"description": "d" * 4000}, {"description": "d" * 2001}]
    check_message_limits({"embeds": embeds}, errors)
    assert errors["embeds"]["_errors"][0]["code"] == "MESSAGE_EMBED_TOTAL_LENGTH"


def test_docs_limits_for_modals_and_commands() -> None:
    errors: dict[str, Any] = {}
    check_modal_limits({"custom_id": "m", "title": "t" * 46, "components": []}, errors)
    assert errors["data"]["title"]
    errors = {}
    commands = [
        {"name": "Edit", "description": "upper case"},
        {"name": "Remix", "type": 3},
        {"name": "ok", "description": "fine", "options": [{"name": "Bad", "type": 3}]},
    ]
    check_commands(commands, errors)
    assert set(errors) == {"0", "2"}
    assert errors["2"]["options"]["0"]["name"]


def test_absent_spec_is_skipped_unless_required(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = tmp_path / "openapi.json"
    monkeypatch.delenv(REQUIRE_ENV, raising=False)
    assert load_spec(missing) is None
    monkeypatch.setenv(REQUIRE_ENV, "1")
    with pytest.raises(SpecMissingError):
        load_spec(missing)


async def test_spec_violation_through_the_server(
    fake_discord: FakeDiscord, spec: SpecValidator
) -> None:
    channel = fake_discord.channel("general")
    url = f"{fake_discord.api_base}/channels/{channel.id}/messages"
    headers = {"Authorization": f"Bot {fake_discord.token}"}
    async with (
        aiohttp.ClientSession(headers=headers) as session,
        session.post(url, json={"content": "ok", "embeds": [{"color": -1}]}) as response,
    ):
        assert response.status == 400
        body = await response.json()
    assert body["code"] == 50035 and body["message"] == "Invalid Form Body"
    assert "color" in body["errors"]["embeds"]["0"]
    assert [v.code for v in fake_discord.pop_violations()] == [50035]
    assert not fake_discord.messages_in(channel)


def test_localized_commands_are_accepted_and_checked(spec: SpecValidator) -> None:
    route = "/applications/{application_id}/guilds/{guild_id}/commands"
    command = {
        "name": "edit",
        "description": "Edit images",
        "description_localizations": {"de": "Bilder bearbeiten", "ja": "画像を編集"},
        "options": [
            {
                "type": 3,
                "name": "ratio",
                "description": "Shape",
                "description_localizations": {"de": "Form"},
                "choices": [
                    {"name": "square", "value": "1:1", "name_localizations": {"ja": "正方形"}}
                ],
            }
        ],
    }
    assert spec.validate("PUT", route, [command]) == {}
    errors: dict[str, Any] = {}
    check_commands([command], errors)
    assert errors == {}
    too_long = {**command, "description_localizations": {"de": "x" * 101}}
    assert spec.validate("PUT", route, [too_long])
    wrong = {
        **command,
        "options": [
            {
                **command["options"][0],
                "choices": [
                    {"name": "square", "value": "1:1", "name_localizations": {"klingon": "x"}}
                ],
            }
        ],
    }
    check_commands([wrong], errors)
    assert errors["0"]["options"]["0"]["choices"]["0"]["name_localizations"]["klingon"]
