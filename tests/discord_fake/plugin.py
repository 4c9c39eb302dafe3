"""pytest fixtures for the fake Discord (import them into a ``conftest.py``).

- ``discord_spec`` (session): the compiled OpenAPI validator, or ``None`` when the spec file is
  absent (a notice is printed in the header and the terminal summary);
  ``KONTEXT_REQUIRE_DISCORD_SPEC=1`` turns an absent spec into an error.
- ``fake_discord``: a started :class:`FakeDiscord` with discord.py pointed at it (endpoints
  restored afterwards). At teardown the test fails if the bot made any request real Discord
  would reject, unless the test declared it with ``fake_discord.allow_violations(code, ...)``.
  Options through the marker ``@pytest.mark.discord_fake(granted_intents=Intent.MESSAGE_CONTENT)``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bot.discord.endpoints import (
    current_discord_endpoints,
    point_discord_at,
    restore_discord_defaults,
)

from .server import FakeDiscord
from .validation import SpecValidator, load_spec, spec_path, spec_required

_NOTICE = "discord fake: spec validation {state}"


def _spec_state() -> str:
    path = spec_path()
    if path.is_file():
        return f"ON ({path})"
    required = " but KONTEXT_REQUIRE_DISCORD_SPEC=1: an error" if spec_required() else ""
    return f"SKIPPED: no Discord OpenAPI spec at {path} (set DISCORD_OPENAPI_SPEC){required}"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "discord_fake(granted_intents=0): options for the fake_discord fixture",
    )


def pytest_report_header(config: pytest.Config) -> str:
    return _NOTICE.format(state=_spec_state())


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not spec_path().is_file():
        terminalreporter.write_sep("=", "discord fake", yellow=True)
        terminalreporter.write_line(_NOTICE.format(state=_spec_state()), yellow=True)


@pytest.fixture(scope="session")
def discord_spec() -> SpecValidator | None:
    """The spec validator, loaded once per session."""
    return load_spec()


def assert_no_unexpected_violations(fake: FakeDiscord) -> None:
    """Fail the test if the fake recorded a rejection the test did not allow."""
    unexpected = fake.unexpected_violations()
    if unexpected:
        lines = "\n".join(f"  - {v}" for v in unexpected)
        pytest.fail(
            "the bot made requests real Discord would reject "
            f"(allow expected ones with fake_discord.allow_violations(code)):\n{lines}",
            pytrace=False,
        )


@pytest.fixture
async def fake_discord(
    request: pytest.FixtureRequest, discord_spec: SpecValidator | None
) -> AsyncIterator[FakeDiscord]:
    """A running fake Discord with discord.py's endpoints pointed at it."""
    marker = request.node.get_closest_marker("discord_fake")
    options = dict(marker.kwargs) if marker else {}
    fake = FakeDiscord(validator=discord_spec, **options)
    await fake.start()
    saved = current_discord_endpoints()
    point_discord_at(fake.api_base, fake.gateway_url)
    try:
        yield fake
    finally:
        restore_discord_defaults(saved)
        await fake.close()
    assert_no_unexpected_violations(fake)
