"""The operator's HTTP endpoints: ``GET /healthz`` and ``GET /metrics``.

``/healthz`` answers 200 with a JSON report, or 503 naming what is down: storage unreachable,
the job engine not running, a gateway shard not connected, or every provider paused (nothing
can run). One paused provider while others work is reported but is not "down". Gateway shards
are reported by a callable the Discord edge installs; a process without a gateway has none.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from aiohttp import web

from bot.errors import KontextError
from bot.i18n import t
from bot.ops.metrics import CONTENT_TYPE, Metrics
from bot.ops.pauses import PauseService
from storage.sql import Repository

log = logging.getLogger(__name__)

#: How long the storage check may take before storage counts as unreachable.
STORAGE_TIMEOUT = 5.0

#: Shard id: connected. Installed by the Discord edge.
ShardSource = Callable[[], Mapping[int, bool]]


class PortUnavailable(KontextError, code="http_port"):
    """The health endpoint's port cannot be opened."""


class EngineState(Protocol):
    @property
    def started(self) -> bool: ...


class Health:
    def __init__(
        self,
        repo: Repository,
        engine: EngineState,
        pauses: PauseService,
        *,
        shards: ShardSource | None = None,
    ) -> None:
        self.repo = repo
        self.engine = engine
        self.pauses = pauses
        self.shards = shards
        self.engine_expected = True  # False in a gateway-only process, which runs no engine

    async def report(self) -> tuple[bool, dict[str, Any]]:
        """``(healthy, body)``; the body's ``down`` lists what is down."""
        down: list[str] = []
        try:
            version = await asyncio.wait_for(self.repo.schema_version(), STORAGE_TIMEOUT)
            storage: dict[str, Any] = {"ok": True, "schema_version": version}
        except Exception as err:
            log.warning("health check: storage unreachable (%s)", type(err).__name__)
            storage = {"ok": False, "error": type(err).__name__}
            down.append("storage")
        engine = {"running": self.engine.started}
        if self.engine_expected and not self.engine.started:
            down.append("engine")
        providers: dict[str, Any] = {}
        for name in self.pauses.labels:
            pause = self.pauses.pause_of(name)
            providers[name] = (
                {"state": "ok"}
                if pause is None
                else {"state": "paused", "code": pause.code, "since": pause.paused_at}
            )
        if providers and all(p["state"] == "paused" for p in providers.values()):
            down.append("providers")
        gateway: dict[str, Any] | None = None
        if self.shards is not None:
            shards = self.shards()
            gateway = {"shards": {str(k): v for k, v in sorted(shards.items())}}
            missing = sorted(k for k, connected in shards.items() if not connected)
            if missing or not shards:
                down.append("gateway")
        body = {
            "status": "down" if down else "ok",
            "down": down,
            "storage": storage,
            "engine": engine,
            "providers": providers,
            "gateway": gateway,
        }
        return not down, body


class OpsServer:
    """A small aiohttp server in the running process; ``port=0`` picks a free port."""

    def __init__(self, health: Health, metrics: Metrics, *, host: str, port: int) -> None:
        self.health = health
        self.metrics = metrics
        self.host = host
        self.port = port
        self._runner: web.AppRunner | None = None
        app = web.Application()
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/metrics", self._metrics)
        self.app = app

    async def start(self) -> None:
        runner = web.AppRunner(self.app, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port)
        try:
            await site.start()
        except OSError as err:
            await runner.cleanup()
            raise PortUnavailable(
                t(
                    "errors.ops.port",
                    host=self.host,
                    port=self.port,
                    error=str(err.strerror or err),
                )
            ) from err
        self._runner = runner
        self.port = int(runner.addresses[0][1])
        log.info("health and metrics on http://%s:%d (/healthz, /metrics)", self.host, self.port)

    async def stop(self) -> None:
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

    async def _healthz(self, request: web.Request) -> web.Response:
        healthy, body = await self.health.report()
        return web.json_response(body, status=200 if healthy else 503)

    async def _metrics(self, request: web.Request) -> web.Response:
        try:
            payload = await self.metrics.render()
        except Exception:
            log.exception("rendering /metrics failed")
            return web.Response(status=503, text="metrics unavailable: storage unreachable\n")
        return web.Response(body=payload, headers={"Content-Type": CONTENT_TYPE})
