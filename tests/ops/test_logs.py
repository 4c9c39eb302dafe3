"""Log lines: a UTC timestamp on every line, JSON with the job's fields, secrets masked."""

from __future__ import annotations

import io
import json
import logging
import re
from pathlib import Path

import pytest
from pydantic import SecretStr

from bot.cli import main
from bot.config import Settings
from bot.ops.logs import setup_logging
from tests.jobs.conftest import edit
from tests.ops.conftest import Stack

TOKEN = "MTA1.discord-token-value.xyz"


async def test_json_lines_carry_the_job_and_its_duration(stack: Stack) -> None:
    out = io.StringIO()
    setup_logging("INFO", fmt="json", stream=out, secrets=stack.settings.secret_values())
    job = await stack.engine.submit(edit())
    await stack.engine.run_until_idle()
    logging.getLogger("bot.test").warning("the key is %s", stack.fake.api_key)

    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert lines and all({"timestamp", "level", "logger", "message"} <= set(x) for x in lines)
    assert all(x["timestamp"].endswith("+00:00") for x in lines)
    (finished,) = [x for x in lines if x["message"].startswith(f"job {job.id} finished")]
    assert finished["job_id"] == job.id and finished["guild_id"] == 1
    assert finished["user_id"] == 100 and finished["provider"] == "aimlapi"
    assert isinstance(finished["duration_seconds"], float)
    assert lines[-1]["message"] == "the key is ***"
    assert stack.fake.api_key not in out.getvalue()


def test_text_lines_start_with_a_utc_timestamp_and_mask_secrets() -> None:
    settings = Settings(
        _env_file=None,
        discord_token=SecretStr(TOKEN),
        database_url="postgresql://kontext:pg-password-1@db/kontext",
    )
    out = io.StringIO()
    setup_logging(
        "INFO",
        stream=out,
        secrets=settings.secret_values(),
        database_url=settings.database_url.get_secret_value(),
    )
    log = logging.getLogger("bot.test")
    log.info("connecting with %s to %s", TOKEN, "postgresql://kontext:pg-password-1@db/kontext")
    log.info("plain", extra={"job_id": 7, "duration_seconds": 1.5})
    log.info("a provider said %s", "red\x1b[31m text")
    first, second, third = out.getvalue().splitlines()
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z INFO bot\.test: ", first)
    assert TOKEN not in first and "pg-password-1" not in first and first.count("***") == 2
    assert second.endswith("plain [job=7 duration=1.50s]")
    assert "\x1b" not in third and third.endswith("a provider said red\\x1b[31m text")


def test_every_command_logs_through_the_one_setup(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("KONTEXT_DATABASE_URL", f"sqlite:///{tmp_path / 'kontext.db'}")
    monkeypatch.setenv("KONTEXT_LOG_FORMAT", "json")
    assert main(["-v", "migrate"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert any(x["message"].startswith("applied SQLite migration 0001") for x in lines)
    assert all(x["level"] in {"INFO", "WARNING"} and x["timestamp"] for x in lines)
