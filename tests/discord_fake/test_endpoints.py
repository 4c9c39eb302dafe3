"""bot.discord.endpoints: pointing discord.py at another REST base and gateway."""

from __future__ import annotations

import pytest
import yarl
from discord.gateway import DiscordWebSocket
from discord.http import Route

from bot.discord.endpoints import (
    DEFAULT_API_BASE,
    DEFAULT_GATEWAY_URL,
    current_discord_endpoints,
    point_discord_at,
    restore_discord_defaults,
)

from .server import FakeDiscord


@pytest.fixture
def saved_endpoints() -> object:
    saved = current_discord_endpoints()
    yield saved
    restore_discord_defaults(saved)


def test_point_and_restore(saved_endpoints: object) -> None:
    point_discord_at("http://127.0.0.1:9/api/v10/", "ws://127.0.0.1:9/gateway")
    assert Route.BASE == "http://127.0.0.1:9/api/v10"
    assert Route("GET", "/users/@me").url == "http://127.0.0.1:9/api/v10/users/@me"
    assert isinstance(DiscordWebSocket.DEFAULT_GATEWAY, yarl.URL)
    assert str(DiscordWebSocket.DEFAULT_GATEWAY) == "ws://127.0.0.1:9/gateway"
    restore_discord_defaults()
    assert Route.BASE == DEFAULT_API_BASE == "https://discord.com/api/v10"
    assert str(DiscordWebSocket.DEFAULT_GATEWAY) == DEFAULT_GATEWAY_URL


def test_rest_only_proxy_keeps_discords_gateway(saved_endpoints: object) -> None:
    point_discord_at("https://proxy.internal/api/v10", None)
    assert Route.BASE == "https://proxy.internal/api/v10"
    assert str(DiscordWebSocket.DEFAULT_GATEWAY) == DEFAULT_GATEWAY_URL


@pytest.mark.parametrize(
    ("api", "gateway"),
    [("ws://x/api/v10", None), ("http://x/api/v10", "http://x/gw"), ("http://x", "ws://x/?v=10")],
)
def test_bad_urls_are_refused(saved_endpoints: object, api: str, gateway: str | None) -> None:
    with pytest.raises(ValueError, match="must"):
        point_discord_at(api, gateway)
    assert current_discord_endpoints() == saved_endpoints


async def test_fixture_points_discord_py_at_the_fake(fake_discord: FakeDiscord) -> None:
    endpoints = current_discord_endpoints()
    assert endpoints.api_base == fake_discord.api_base
    assert str(endpoints.gateway_url) == fake_discord.gateway_url
