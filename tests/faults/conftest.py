"""The fault harness: each real provider module, over HTTP, against its fake that misbehaves.

Two paths run the same faults: the job engine (real SQLite, a :class:`ManualClock`, the
engine's drain mode) and the CLI's :func:`bot.generate.generate`. Time moves only on the
manual clock, in two ways: the engine's drain mode (or, for ``generate``, this driver) moves
it when the client waits for time, and :func:`drive` moves it when the *fake* holds a request
(a hang, or a trickle between bytes), straight to the earliest bound the client set (an
alarm) or the fake's next byte. A hung request therefore ends exactly at its bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import httpx
import pytest

from bot.clock import ManualClock
from bot.jobs import EngineConfig, JobEngine, JobEvent
from bot.jobs.parking import Parking
from bot.media import MediaFetcher
from bot.providers import build_provider
from bot.providers.base import Provider
from bot.providers.http import HttpRetryPolicy
from storage.sql import Repository
from tests.fakes import FakeProvider, running, settings_for
from tests.jobs.conftest import T0, RecordingDeliverer
from tests.jobs.conftest import repo as repo  # the engine tests' real SQLite fixture

T = TypeVar("T")

#: The job deadline in both paths: longer than one submit may take (180 s), so a hung
#: submit ends on its own bound and a job that never finishes ends on the deadline.
DEADLINE = 300.0
#: The image cap in both paths (small, so an oversized result costs little to stream).
IMAGE_CAP = 4 * 1024 * 1024
#: The real policy without jitter, so bounds are exact.
POLICY = HttpRetryPolicy(jitter=False)


class ParkedClock:
    """The manual clock as a provider inside the engine sees it: its sleeps (retry backoff)
    go through the engine's :class:`Parking`, so the drain mode knows the job waits for
    time rather than for the network. Alarms stay on the clock itself."""

    def __init__(self, clock: ManualClock) -> None:
        self.clock = clock
        self.parking: Parking | None = None

    def now(self) -> float:
        return self.clock.now()

    def monotonic(self) -> float:
        return self.clock.monotonic()

    async def sleep(self, seconds: float) -> None:
        assert self.parking is not None, "attach the engine's parking first"
        await self.parking.park(seconds, None)

    async def alarm(self, seconds: float) -> None:
        await self.clock.alarm(seconds)


async def drive(
    clock: ManualClock,
    fake: FakeProvider,
    work: Awaitable[T],
    *,
    engine: JobEngine | None = None,
) -> T:
    """Run ``work`` to its end, moving time while the fake holds a request: to the fake's
    next byte, but never past the earliest alarm that stood when the request came in (the
    client's bound on it). With an ``engine``, only while every other engine task is parked
    (its drain mode moves time for the rest); without one, also move time to the next
    sleeper whenever the fake holds nothing."""
    task = asyncio.ensure_future(work)
    seen, bound = -1, None
    while not task.done():
        await asyncio.sleep(0)
        if task.done():
            break
        now = clock.now()
        if fake.holding:
            if engine is not None and engine._parking.busy() > fake.holding:
                continue  # the engine has work to do at this time first
            if len(fake.requests) != seen:
                seen, bound = len(fake.requests), clock.next_alarm()
            if fake.hold_until is not None and fake.hold_until <= now:
                continue  # the fake is about to send its next byte
            wakes = [w for w in (fake.hold_until, bound) if w is not None]
            if wakes and min(wakes) > now:
                clock.set(min(wakes))
        elif engine is None:
            wake = clock.next_wake()
            if wake is not None:
                clock.set(wake)
    return task.result()


@dataclass
class Rig:
    """One provider's fake, the real provider module talking to it, and what runs it."""

    fake: FakeProvider
    clock: ManualClock
    client: httpx.AsyncClient
    repo: Repository
    events: list[JobEvent] = field(default_factory=list)
    deliverer: RecordingDeliverer = field(default_factory=RecordingDeliverer)

    def fetcher(self) -> MediaFetcher:
        # "localhost" is allowed but not trusted: a result link there resolves to a
        # private address and must be refused before any connection.
        return MediaFetcher(
            self.client, allowed_hosts=("localhost",), trusted_hosts=(self.fake.host,)
        )

    def provider(self, clock: ManualClock | ParkedClock) -> Provider:
        settings = settings_for(self.fake)
        return build_provider(self.fake.name, settings, self.client, clock, policy=POLICY)  # type: ignore[arg-type]

    def engine(self) -> JobEngine:
        view = ParkedClock(self.clock)
        engine = JobEngine(
            self.repo,
            {self.fake.name: self.provider(view)},
            self.deliverer,
            clock=self.clock,
            config=EngineConfig(
                default_provider=self.fake.name,
                deadline_seconds=DEADLINE,
                max_output_bytes=IMAGE_CAP,
            ),
            fetcher=self.fetcher(),
            sinks=[self._sink],
            rng=random.Random(7),
        )
        view.parking = engine._parking
        return engine

    async def _sink(self, event: JobEvent) -> None:
        self.events.append(event)


@contextlib.asynccontextmanager
async def open_rig(name: str, repo: Repository) -> AsyncIterator[Rig]:
    clock = ManualClock(T0)
    async with running(name, clock=clock) as fake, httpx.AsyncClient() as client:
        yield Rig(fake=fake, clock=clock, client=client, repo=repo)


#: (provider, fault, path, status, code, reason, submits, polls, cdn, seconds) per run.
RESULTS: list[tuple[str, str, str, str, str, str, int, int, int, float]] = []


def pytest_sessionfinish(session: pytest.Session) -> None:
    """With ``KONTEXT_FAULT_TABLE`` set, write what every row did as a markdown table."""
    target = os.environ.get("KONTEXT_FAULT_TABLE")
    if not target or not RESULTS:
        return
    lines = [
        "| provider | fault | path | outcome | code | reason (start) | submits | polls | "
        "downloads | clock s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, fault, path, status, code, reason, submits, polls, cdn, seconds in RESULTS:
        text = " ".join(reason.replace("|", "/").split())[:240]
        lines.append(
            f"| {name} | {fault} | {path} | {status} | {code} | {text} | {submits} | {polls} "
            f"| {cdn} | {seconds:g} |"
        )
    Path(target).write_text("\n".join(lines) + "\n")
