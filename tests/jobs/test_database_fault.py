"""A database that breaks under a running engine is reported in one line, not a traceback
on every safety poll."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from bot.jobs import EngineConfig
from storage.sqlite import SqliteRepository

from .conftest import Harness

POLL = 15.0


class _Seen(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []
        self.event = asyncio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)
        self.event.set()


async def test_a_vanished_database_while_claiming_is_one_line(harness: Harness) -> None:
    assert isinstance(harness.repo, SqliteRepository)
    engine = harness.engine(EngineConfig(default_provider="fake", safety_poll_seconds=POLL))
    seen = _Seen()
    logger = logging.getLogger("bot.jobs.engine")
    logger.addHandler(seen)
    try:
        await engine.start()
        await engine.run_until_idle()  # the claim loop parked until the next safety poll
        await asyncio.to_thread(Path(harness.repo.path).unlink)
        harness.clock.advance(POLL)
        await asyncio.wait_for(seen.event.wait(), timeout=30)
    finally:
        logger.removeHandler(seen)
    assert seen.records
    for record in seen.records:
        assert "is gone" in record.getMessage()
        assert not record.exc_info


@pytest.fixture(autouse=True)
def _quiet_storage(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.CRITICAL, logger="storage.faults")
