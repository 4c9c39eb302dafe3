"""Shared test fixtures. Each layer keeps its own fixtures beside its tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.config import Settings

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings built directly (no environment, no .env), with storage in a temp folder."""
    return Settings(_env_file=None, database_url=f"sqlite:///{tmp_path / 'kontext.db'}")
