"""The fault-and-abuse suite runs the real bot on the fake Discord, like tests/bot."""

from tests.bot.conftest import harness, provider  # noqa: F401 - pytest finds fixtures by name
from tests.discord_fake.plugin import (  # noqa: F401 - pytest finds fixtures and hooks by name
    discord_spec,
    fake_discord,
)
