"""A fake Discord for end-to-end tests (full guide: README.md beside this file).

The unmodified discord.py client connects to :class:`FakeDiscord` over real HTTP and a real
websocket on 127.0.0.1; every request body is checked against Discord's OpenAPI spec and the
docs-only limits, and Discord's rules (3 s to acknowledge, one acknowledgement, 15 min tokens,
Message Content intent, permissions, rate limits, expiring CDN URLs) are enforced.

Quick tour::

    # conftest.py
    from tests.discord_fake.plugin import discord_spec, fake_discord  # noqa: F401

    async def test_edit(fake_discord: FakeDiscord) -> None:
        async with fake_discord.running(MyBot(guild_ready_timeout=0.05)):
            handle = await fake_discord.member("alice").run_command("edit", image=png_file())
            message = await handle.response()          # an InteractionHandle
            fake_discord.clock.advance(901)            # tokens expire, no waiting
            fake_discord.requests_to("POST", "/channels/{channel_id}/messages")

Rejections are recorded in ``fake_discord.violations`` and fail the test at teardown unless
allowed with ``fake_discord.allow_violations(code)``.
"""

from __future__ import annotations

import warnings

# discord.py imports the stdlib ``audioop`` (voice), which warns on Python 3.11+; with the
# project's ``filterwarnings = error`` that would break collection. Import it once, quietly.
with warnings.catch_warnings():
    warnings.filterwarnings("ignore", "'audioop' is deprecated", DeprecationWarning)
    import discord  # noqa: F401

from .actors import Actor, InteractionHandle, png_file
from .models import FakeClock, Intent, Perm, StoredMessage
from .server import FakeDiscord
from .wire import RequestRecord, Violation
from .world import FileUpload

__all__ = [
    "Actor",
    "FakeClock",
    "FakeDiscord",
    "FileUpload",
    "Intent",
    "InteractionHandle",
    "Perm",
    "RequestRecord",
    "StoredMessage",
    "Violation",
    "png_file",
]
