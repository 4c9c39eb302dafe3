"""Shared test fixtures. Each layer keeps its own fixtures beside its tests."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.config import Settings
from bot.ops.logs import remove_handler

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings built directly (no environment, no .env), with storage in a temp folder."""
    return Settings(_env_file=None, database_url=f"sqlite:///{tmp_path / 'kontext.db'}")


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """The CLI sets up logging for the whole process, as it should; a test that runs it
    in-process must not leave that (a handler on a closed stream, levels) to the next one."""
    levels = {
        name: logger.level
        for name, logger in [("", logging.getLogger()), *logging.root.manager.loggerDict.items()]
        if isinstance(logger, logging.Logger)
    }
    yield
    remove_handler()
    for name, logger in [("", logging.getLogger()), *logging.root.manager.loggerDict.items()]:
        if isinstance(logger, logging.Logger):
            logger.setLevel(levels.get(name, logging.NOTSET))
