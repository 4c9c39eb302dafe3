"""Fixtures for the fake Discord's self-tests (other suites import the same from ``plugin``)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

import discord
import pytest

from .plugin import (  # noqa: F401 - pytest finds fixtures and hooks by name
    discord_spec,
    fake_discord,
    pytest_configure,
    pytest_report_header,
    pytest_terminal_summary,
)
from .server import FakeDiscord
from .testbot import FakeTestBot

StartBot = Callable[..., Awaitable[FakeTestBot]]


@pytest.fixture
async def start_bot(
    fake_discord: FakeDiscord,  # noqa: F811 - the fixture imported above
) -> AsyncIterator[StartBot]:
    """Start the self-test bot against the fake; closed at teardown."""
    async with contextlib.AsyncExitStack() as stack:

        async def start(intents: discord.Intents | None = None) -> FakeTestBot:
            bot = FakeTestBot(intents=intents, guild_id=fake_discord.guild.id)
            await stack.enter_async_context(fake_discord.running(bot))
            return bot

        yield start


@pytest.fixture
async def bot(start_bot: StartBot) -> FakeTestBot:
    return await start_bot()
