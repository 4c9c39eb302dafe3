"""A first run from a copied ``.env.example``: empty values count as unset, and each missing
piece ends ``run`` with one clear line before anything starts."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from bot.cli import EXIT_USAGE, main
from bot.config import Settings
from storage import resolve_database_url
from tests.conftest import REPO_ROOT

_OURS = ("DISCORD_", "_API_KEY", "_BASE_URL", "KONTEXT_")


@pytest.fixture
def first_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working folder holding an unchanged copy of .env.example, no settings in the env."""
    for name in list(os.environ):
        if any(part in name for part in _OURS):
            monkeypatch.delenv(name)
    shutil.copy(REPO_ROOT / ".env.example", tmp_path / ".env")
    monkeypatch.chdir(tmp_path)
    return tmp_path / ".env"


@pytest.mark.usefixtures("first_run")
def test_an_unchanged_env_example_asks_for_the_token(capsys: pytest.CaptureFixture[str]) -> None:
    settings = Settings()
    assert settings.discord_token is None and settings.aimlapi_api_key is None
    assert main(["run"]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert err.splitlines() == [
        "kontext-bot: DISCORD_TOKEN is not set: the bot cannot log in without it."
    ]


def test_no_usable_provider_key_refuses_in_one_line(
    first_run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = first_run.read_text().replace("DISCORD_TOKEN=", "DISCORD_TOKEN=abc.def.ghi")
    first_run.write_text(text.replace("AIMLAPI_API_KEY=", "AIMLAPI_API_KEY=   "))
    assert main(["run"]) == EXIT_USAGE
    (line,) = capsys.readouterr().err.splitlines()
    assert "AIMLAPI_API_KEY is not set" in line and "abc.def.ghi" not in line
    assert not (first_run.parent / "data").exists()  # refused before any storage was made


def test_empty_values_count_as_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KONTEXT_RETENTION_DAYS", "")
    monkeypatch.setenv("KONTEXT_HTTP_PORT", "")
    settings = Settings(_env_file=None)
    assert settings.retention_days == 30 and settings.http_port is None


def test_the_sqlite_path_is_resolved_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert resolve_database_url("sqlite:///data/kontext.db") == (
        f"sqlite:///{tmp_path / 'data' / 'kontext.db'}"
    )
    assert resolve_database_url("sqlite:////srv/k.db") == "sqlite:////srv/k.db"
    url = "postgresql://kontext:pw@db/kontext"
    assert resolve_database_url(url) == url
