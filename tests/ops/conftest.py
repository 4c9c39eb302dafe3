"""The core wired as ``open_app`` wires it, minus Discord: a real SQLite database, the AIML API
fake behind the real provider module, the job engine on a ManualClock, and Operations."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot.clock import ManualClock
from bot.config import Settings
from bot.jobs import EngineConfig, JobEngine, JobEvent
from bot.media import MediaFetcher
from bot.ops.pauses import OperatorAlert
from bot.ops.service import Operations
from bot.providers import CAPABILITIES, build_provider
from storage import open_repository
from storage.sql import Repository
from tests.fakes import AimlApiFake, require_docs, settings_for
from tests.jobs.conftest import T0, RecordingDeliverer
from tests.storage.conftest import db_url, pg_database  # noqa: F401 - fixtures by name

PROBE = 60.0  # KONTEXT_PROVIDER_PROBE_SECONDS in these tests (well within a job's deadline)


@dataclass
class Stack:
    fake: AimlApiFake
    settings: Settings
    clock: ManualClock
    repo: Repository
    engine: JobEngine
    ops: Operations
    deliverer: RecordingDeliverer
    alerts: list[OperatorAlert] = field(default_factory=list)
    events: list[JobEvent] = field(default_factory=list)

    async def until(self, check: Callable[[], bool], what: str) -> None:
        """Let the loop run until ``check()`` holds (bounded by a generous wall-clock guard,
        never asserted on)."""
        for _ in range(20_000):
            if check():
                return
            await asyncio.sleep(0.001)
        raise AssertionError(f"never happened: {what}")


@contextlib.asynccontextmanager
async def stack_for(
    tmp_path: Path, *, fake: AimlApiFake | None = None, **overrides: Any
) -> AsyncIterator[Stack]:
    """The stack over ``tmp_path/kontext.db`` (two stacks over one folder are two processes
    sharing a database); ``fake`` shares one provider fake between them."""
    async with contextlib.AsyncExitStack() as own:
        if fake is None:
            fake = await own.enter_async_context(AimlApiFake(docs=require_docs()))
        values: dict[str, Any] = {"database_url": f"sqlite:///{tmp_path / 'kontext.db'}"}
        values.update(overrides)
        settings = settings_for(fake, **values)
        clock = ManualClock(T0)
        repo = open_repository(settings.database_url.get_secret_value())
        await repo.connect()
        try:
            async with httpx.AsyncClient() as client:
                provider = build_provider("aimlapi", settings, client, clock)
                fetcher = MediaFetcher.from_settings(
                    client, settings, CAPABILITIES["aimlapi"].result_hosts
                )
                deliverer = RecordingDeliverer()
                engine = JobEngine(
                    repo,
                    {"aimlapi": provider},
                    deliverer,
                    clock=clock,
                    config=EngineConfig.from_settings(settings, default_provider="aimlapi"),
                    fetcher=fetcher,
                )
                ops = Operations(settings, repo, engine, {"aimlapi": "AIML API"}, clock=clock)
                stack = Stack(fake, settings, clock, repo, engine, ops, deliverer)

                async def alert(item: OperatorAlert) -> None:
                    stack.alerts.append(item)

                async def sink(event: JobEvent) -> None:
                    stack.events.append(event)

                ops.pauses.add_alert_sink(alert)
                engine.events.add(sink)
                await engine.start()
                try:
                    await ops.start()
                    yield stack
                finally:
                    await ops.stop()
                    await engine.stop()
                    await provider.aclose()
        finally:
            await repo.close()
        fake.assert_clean()


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[Stack]:
    async with stack_for(tmp_path, provider_probe_seconds=PROBE) as s:
        yield s
