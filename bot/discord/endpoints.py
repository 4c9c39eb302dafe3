"""Where discord.py sends its REST requests and opens its gateway websocket.

discord.py has no public setting for either endpoint, so this module is the one place that
touches the two private class attributes involved:

- ``discord.http.Route.BASE`` (a ``str`` such as ``"https://discord.com/api/v10"``): the prefix
  of every REST route, webhooks and interaction callbacks included.
- ``discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY`` (a ``yarl.URL``): the gateway a plain
  ``commands.Bot`` connects to (it never asks ``/gateway/bot``). discord.py appends
  ``?v=10&encoding=json&compress=zlib-stream`` itself; on reconnects it uses READY's
  ``resume_gateway_url`` instead.

The bot calls :func:`point_discord_at` once at start-up from its settings (``DISCORD_API_BASE``
and ``DISCORD_GATEWAY_URL``, e.g. for a REST rate-limit proxy); the tests point it at the fake
Discord and call :func:`restore_discord_defaults` afterwards so no global state leaks. Both
attributes are private: discord.py is pinned and ``tests/discord_fake`` keeps a self-test of them.
"""

from __future__ import annotations

from typing import NamedTuple

import yarl
from discord.gateway import DiscordWebSocket
from discord.http import Route

__all__ = [
    "DEFAULT_API_BASE",
    "DEFAULT_GATEWAY_URL",
    "DiscordEndpoints",
    "current_discord_endpoints",
    "point_discord_at",
    "restore_discord_defaults",
]


class DiscordEndpoints(NamedTuple):
    """The REST base and the gateway URL discord.py currently uses."""

    api_base: str
    gateway_url: yarl.URL


# Captured at import, before anything can have changed them.
_DEFAULTS = DiscordEndpoints(Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY)
DEFAULT_API_BASE: str = _DEFAULTS.api_base
DEFAULT_GATEWAY_URL: str = str(_DEFAULTS.gateway_url)


def current_discord_endpoints() -> DiscordEndpoints:
    """Return the endpoints discord.py will use for the next request and connection."""
    return DiscordEndpoints(Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY)


def point_discord_at(api_base: str, gateway_url: str | None) -> None:
    """Send discord.py's REST traffic to ``api_base`` and its gateway to ``gateway_url``.

    ``api_base`` is the full prefix including the API version, as in Discord's own
    ``https://discord.com/api/v10``; a trailing slash is ignored. ``gateway_url`` is a
    ``ws://`` or ``wss://`` URL without query (discord.py adds its own); ``None`` keeps
    Discord's default gateway, which suits a REST-only proxy.

    Only affects clients that connect afterwards. Raises ``ValueError`` on a URL with the
    wrong scheme.
    """
    base = api_base.rstrip("/")
    if yarl.URL(base).scheme not in ("http", "https"):
        raise ValueError(f"api_base must be an http(s) URL, got {api_base!r}")
    gateway = _DEFAULTS.gateway_url
    if gateway_url is not None:
        gateway = yarl.URL(gateway_url)
        if gateway.scheme not in ("ws", "wss"):
            raise ValueError(f"gateway_url must be a ws(s) URL, got {gateway_url!r}")
        if gateway.query_string:
            raise ValueError(f"gateway_url must not carry a query, got {gateway_url!r}")
    Route.BASE = base
    DiscordWebSocket.DEFAULT_GATEWAY = gateway


def restore_discord_defaults(endpoints: DiscordEndpoints | None = None) -> None:
    """Put back ``endpoints`` (from :func:`current_discord_endpoints`), or Discord's own."""
    target = endpoints or _DEFAULTS
    Route.BASE = target.api_base
    DiscordWebSocket.DEFAULT_GATEWAY = target.gateway_url
