"""``kontext-bot doctor`` against the fake Discord (which validates every request against
Discord's published OpenAPI spec) and real SQLite storage."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from bot.cli import main
from bot.config import Settings
from bot.ops.doctor import Check, report, run_checks
from storage import open_repository
from tests.discord_fake import FakeDiscord
from tests.discord_fake.models import Intent
from tests.discord_fake.plugin import assert_no_unexpected_violations
from tests.discord_fake.validation import load_spec


@pytest.fixture
async def discord() -> AsyncIterator[FakeDiscord]:
    fake = FakeDiscord(validator=load_spec(), granted_intents=Intent.MESSAGE_CONTENT)
    await fake.start()
    try:
        yield fake
    finally:
        await fake.close()
    assert_no_unexpected_violations(fake)


def _settings(discord: FakeDiscord, tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "discord_token": SecretStr(discord.token),
        "discord_api_base": discord.api_base,
        "database_url": f"sqlite:///{tmp_path / 'data' / 'kontext.db'}",
        "aimlapi_api_key": SecretStr("a-key-0123456789"),
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)


async def _resolves(host: str) -> object:
    return [("inet", host)]


async def _checks(settings: Settings, **kwargs: Any) -> dict[str, Check]:
    async with httpx.AsyncClient() as http:
        found = await run_checks(settings, http, resolve=kwargs.get("resolve", _resolves))
    return {c.name: c for c in found}


async def test_a_good_setup_passes(discord: FakeDiscord, tmp_path: Path) -> None:
    async with httpx.AsyncClient() as http:
        checks = await run_checks(
            _settings(discord, tmp_path, message_content=True), http, resolve=_resolves
        )
    passed, text = report(checks)
    assert passed, text
    by_name = {c.name: c for c in checks}
    assert discord.bot_user.username in by_name["discord token"].detail
    assert (
        by_name["privileged intents"].ok
        and "Message Content" in by_name["privileged intents"].detail
    )
    assert "does not exist yet" in by_name["database"].detail
    assert by_name["free disk"].ok
    assert (
        by_name["provider aimlapi"].ok is None and "no cheap" in by_name["provider aimlapi"].detail
    )
    assert "cdn.aimlapi.com" in by_name["media hosts"].detail
    assert len(text.splitlines()) == len(checks)
    assert not (tmp_path / "data").exists()  # the doctor created nothing


async def test_each_problem_is_one_failing_line_saying_what_to_do(
    discord: FakeDiscord, tmp_path: Path
) -> None:
    discord.granted_intents = 0
    settings = _settings(discord, tmp_path, message_content=True, aimlapi_api_key=None)
    repo = open_repository(settings.database_url.get_secret_value())
    await repo.connect()
    await repo.pause_provider("modelslab", code="credits", detail="402", now=0.0)
    await repo.close()

    async def unresolvable(host: str) -> object:
        if host == "cdn.discordapp.com":
            raise OSError("no such host")
        return []

    checks = await _checks(settings, resolve=unresolvable)
    passed, _ = report(list(checks.values()))
    assert not passed
    failing = {c.name: c.detail for c in checks.values() if c.ok is False}
    assert "Message Content intent is off" in failing["privileged intents"]
    assert "AIMLAPI_API_KEY is not set" in failing["provider aimlapi"]
    assert "paused (credits: 402)" in failing["provider modelslab"]
    assert "cannot resolve cdn.discordapp.com" in failing["media hosts"]
    assert checks["database"].ok and re.search(
        r"schema version (\d+) of \1$", checks["database"].detail
    )

    bad = _settings(discord, tmp_path, discord_token=SecretStr("not-the-token"))
    discord.allow_violations(40001)
    assert "Reset Token" in (await _checks(bad))["discord token"].detail


async def test_a_provider_key_is_tried_where_the_provider_has_a_cheap_call(
    discord: FakeDiscord, tmp_path: Path
) -> None:
    from tests.fakes import BflFake
    from tests.fakes.schemas import require_docs

    async with BflFake(docs=require_docs()) as bfl:
        good = _settings(
            discord, tmp_path, bfl_api_key=SecretStr(bfl.api_key), bfl_base_url=bfl.base_url
        )
        works = (await _checks(good))["provider bfl"]
        bad = _settings(
            discord, tmp_path, bfl_api_key=SecretStr("not-the-key"), bfl_base_url=bfl.base_url
        )
        refused = (await _checks(bad))["provider bfl"]
        assert [r.endpoint for r in bfl.requests] == ["credits", "credits"]
    assert works.ok is True and "key works" in works.detail
    assert refused.ok is False and "BFL_API_KEY" in refused.detail
    assert "not-the-key" not in refused.detail


async def test_the_command_prints_one_line_per_check(
    discord: FakeDiscord,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("DISCORD_TOKEN", discord.token)
    monkeypatch.setenv("DISCORD_API_BASE", discord.api_base)
    monkeypatch.setenv("KONTEXT_DATABASE_URL", f"sqlite:///{tmp_path / 'kontext.db'}")
    monkeypatch.setenv("AIMLAPI_API_KEY", "a-key-0123456789")
    code = await asyncio.to_thread(main, ["doctor"])
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("OK   discord token: the bot is ")
    assert all(line[:4] in {"OK  ", "FAIL", "--  "} for line in lines)
    assert code == (1 if any(line.startswith("FAIL") for line in lines) else 0)
