"""Everything that operates a running process, built and run together.

:class:`Operations` builds the metrics (an event sink of the engine), the provider pauses
(the engine's pause handler), data lifecycle and the health report, and with
``KONTEXT_HTTP_PORT`` the HTTP server. :meth:`Operations.start` starts the server and two
loops on the injected clock: upkeep (pauses of other processes, probes) every
``UPKEEP_SECONDS`` and retention at start and every ``RETENTION_SECONDS``; :meth:`stop` stops
them again.

The Discord edge plugs in here: ``ops.pauses.add_alert_sink(...)`` (tell the operator),
``ops.set_gateway_shards(...)`` (for ``/healthz``), ``ops.metrics.discord_rate_limited()``
and ``ops.metrics.gateway_latency(...)``, ``ops.lifecycle.guild_left(...)``,
``ops.lifecycle.sync_guilds(...)`` and ``ops.lifecycle.forget_user(...)``, and
``ops.pauses.resume(...)`` for the admin command.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping

from bot.clock import Clock
from bot.config import Settings
from bot.jobs.engine import JobEngine
from bot.ops.http import Health, OpsServer, ShardSource
from bot.ops.lifecycle import DataLifecycle
from bot.ops.metrics import Metrics
from bot.ops.pauses import PauseService
from storage.sql import Repository

log = logging.getLogger(__name__)

UPKEEP_SECONDS = 15.0
RETENTION_SECONDS = 3600.0


class Operations:
    def __init__(
        self,
        settings: Settings,
        repo: Repository,
        engine: JobEngine,
        labels: Mapping[str, str],
        *,
        clock: Clock,
    ) -> None:
        self.clock = clock
        self.engine = engine
        self.metrics = Metrics(repo, labels)
        self.metrics.watch(in_flight=engine.running, paused=engine.pauses.is_paused)
        self.pauses = PauseService(
            repo,
            engine.pauses,
            labels,
            clock=clock,
            probe_seconds=settings.provider_probe_seconds,
        )
        self.lifecycle = DataLifecycle(
            repo,
            engine,
            clock,
            retention_days=settings.retention_days,
            guild_data_days=settings.guild_data_days,
        )
        self.health = Health(repo, engine, self.pauses)
        self.server = (
            None
            if settings.http_port is None
            else OpsServer(
                self.health, self.metrics, host=settings.http_host, port=settings.http_port
            )
        )
        self._tasks: list[asyncio.Task[None]] = []

    def set_gateway_shards(self, source: ShardSource) -> None:
        """How ``/healthz`` learns which gateway shards are connected (the Discord edge)."""
        self.health.shards = source

    async def start(self) -> None:
        self.engine.events.add(self.metrics.on_event)
        await self.pauses.refresh()  # a pause recorded before this start still holds,
        self.pauses.probe_soon()  # but the key may have been fixed before the restart
        if self.server is not None:
            await self.server.start()
        self._tasks = [
            asyncio.create_task(self._every(UPKEEP_SECONDS, self.pauses.tick, first=False)),
            asyncio.create_task(self._every(RETENTION_SECONDS, self.lifecycle.run_once)),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        if self.server is not None:
            await self.server.stop()
        with contextlib.suppress(ValueError):
            self.engine.events.remove(self.metrics.on_event)

    async def _every(
        self, seconds: float, work: Callable[[], Awaitable[object]], *, first: bool = True
    ) -> None:
        if not first:
            await self.clock.sleep(seconds)
        while True:
            try:
                await work()
            except Exception:
                log.exception("periodic %s failed", getattr(work, "__name__", "work"))
            await self.clock.sleep(seconds)
