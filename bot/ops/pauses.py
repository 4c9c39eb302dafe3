"""Provider pauses shared by every process, operator alerts, probes and resuming.

The engine pauses a provider when its account is refused (see :mod:`bot.jobs.pausing`); this
service is its :class:`~bot.jobs.pausing.PauseHandler`. It stores the pause in the database,
so every process stops claiming for that provider, and tells the operator exactly once per
pause: the database insert that creates the pause decides which process tells. Every
``probe_seconds`` it lets one queued job through (the providers document no cheap call that
checks a key or a balance, so a real job is the probe); the first job the provider accepts
resumes it everywhere. :meth:`PauseService.resume` is the operator's way to resume at once.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Literal

from bot.clock import Clock
from bot.jobs.pausing import LanePauses
from bot.models import Frozen, ProviderPause
from bot.providers.errors import ProviderError
from storage.sql import Repository

log = logging.getLogger(__name__)


class OperatorAlert(Frozen):
    """What the operator is told: a provider paused (once per pause) or resumed."""

    kind: Literal["paused", "resumed"]
    provider: str
    label: str
    code: str | None  # "auth" or "credits" for a pause
    message: str  # for the operator: what happened and what to do
    at: float


AlertSink = Callable[[OperatorAlert], Awaitable[None]]


def pause_message(label: str, provider: str, code: str, detail: str | None) -> str:
    said = f" (it said: {detail})" if detail else ""
    if code == "credits":
        what = f"{label} says the bot's account is out of credits{said}. Top up the account."
    else:
        what = (
            f"{label} refused the bot's API key{said}. Set a working key in "
            f"{provider.upper()}_API_KEY and restart the bot."
        )
    return (
        f"{what} Jobs for {label} wait in the queue meanwhile; the bot tries one again every "
        "few minutes (and right after a restart) and resumes by itself once it works."
    )


class PauseService:
    """Implements :class:`~bot.jobs.pausing.PauseHandler` for one engine's ``LanePauses``."""

    def __init__(
        self,
        repo: Repository,
        lanes: LanePauses,
        labels: Mapping[str, str],
        *,
        clock: Clock,
        probe_seconds: float,
    ) -> None:
        self.repo = repo
        self.lanes = lanes
        self.labels = dict(labels)  # provider name: label, for the providers this process runs
        self.clock = clock
        self.probe_seconds = probe_seconds
        self._sinks: list[AlertSink] = []
        self._pauses: dict[str, ProviderPause] = {}
        self._next_probe: float | None = None
        self.ticks = 0  # upkeep rounds done (for tests and the curious)
        lanes.handler = self

    def add_alert_sink(self, sink: AlertSink) -> None:
        """Called with every alert (the Discord side DMs the owner, posts to a channel)."""
        self._sinks.append(sink)

    def pause_of(self, provider: str) -> ProviderPause | None:
        """The pause of ``provider`` as this process last saw it."""
        return self._pauses.get(provider)

    # --- PauseHandler ------------------------------------------------------------------------
    async def paused(self, provider: str, error: ProviderError) -> None:
        now = self.clock.now()
        newly = await self.repo.pause_provider(
            provider, code=error.code, detail=error.detail, now=now
        )
        self._pauses.setdefault(
            provider,
            ProviderPause(provider=provider, code=error.code, detail=error.detail, paused_at=now),
        )
        self._schedule_probe(now)
        if not newly:
            return  # another job or process paused it first and told the operator
        label = self.labels.get(provider, provider)
        message = pause_message(label, provider, error.code, error.detail)
        log.error("provider %s paused: %s", provider, message)
        await self._alert(
            OperatorAlert(
                kind="paused",
                provider=provider,
                label=label,
                code=error.code,
                message=message,
                at=now,
            )
        )

    async def resumed(self, provider: str) -> None:
        self._pauses.pop(provider, None)
        if await self.repo.resume_provider(provider):
            label = self.labels.get(provider, provider)
            log.warning("provider %s works again and is resumed", provider)
            await self._alert(
                OperatorAlert(
                    kind="resumed",
                    provider=provider,
                    label=label,
                    code=None,
                    message=f"{label} works again: the queued jobs are running.",
                    at=self.clock.now(),
                )
            )

    # --- operator ----------------------------------------------------------------------------
    async def resume(self, provider: str) -> bool:
        """Resume a paused provider now (the admin command); ``False`` if it was not paused.
        If the account still fails, the next job pauses it again (and tells the operator)."""
        self._pauses.pop(provider, None)
        self.lanes.resume(provider)
        resumed = await self.repo.resume_provider(provider)
        if resumed:
            log.warning("provider %s resumed by the operator", provider)
        return resumed

    # --- upkeep ------------------------------------------------------------------------------
    async def refresh(self) -> None:
        """Follow the pauses other processes recorded (and lifted)."""
        stored = {p.provider: p for p in await self.repo.provider_pauses()}
        now = self.clock.now()
        for name in self.labels:
            pause = stored.get(name)
            if pause is not None:
                self._pauses[name] = pause
                if not self.lanes.is_paused(name):
                    self.lanes.pause(name, pause.code)
                    self._schedule_probe(now)
            elif self.lanes.is_paused(name):
                self._pauses.pop(name, None)
                self.lanes.resume(name)

    async def tick(self) -> None:
        """One round of upkeep: follow the database, and probe when it is time."""
        self.ticks += 1
        await self.refresh()
        now = self.clock.now()
        if self._next_probe is not None and now >= self._next_probe:
            self._next_probe = None
            for name in self.labels:
                if self.lanes.is_paused(name):
                    log.info("probing paused provider %s with one queued job", name)
                    self.lanes.allow_trial(name)
                    self._schedule_probe(now)

    def probe_soon(self) -> None:
        """Probe paused providers at the next upkeep round (at start: the operator may have
        fixed the key and restarted)."""
        if any(self.lanes.is_paused(name) for name in self.labels):
            self._next_probe = self.clock.now()

    def _schedule_probe(self, now: float) -> None:
        if self._next_probe is None:
            self._next_probe = now + self.probe_seconds

    async def _alert(self, alert: OperatorAlert) -> None:
        for sink in tuple(self._sinks):
            try:
                await sink(alert)
            except Exception:
                log.exception("an operator alert sink failed")
