"""Time as a dependency, so that tests never wait on the wall clock."""

from __future__ import annotations

import asyncio
import time
from typing import Protocol


class Clock(Protocol):
    """Wall time (epoch seconds) for records, monotonic time for intervals, and sleeping."""

    def now(self) -> float: ...

    def monotonic(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """The real clock."""

    def now(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


class ManualClock:
    """A clock that moves only when told to; sleepers wake when time passes their deadline.

    ``sleep`` parks the caller until :meth:`advance` (or :meth:`set`) moves time to or past
    its wake-up time, so tests decide exactly when timers fire.
    """

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self._now = start
        self._start_monotonic = start
        self._sleepers: list[tuple[float, asyncio.Future[None]]] = []

    def now(self) -> float:
        return self._now

    def monotonic(self) -> float:
        return self._now - self._start_monotonic

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._sleepers.append((self._now + seconds, future))
        await future

    @property
    def sleepers(self) -> int:
        """How many tasks are parked in :meth:`sleep` right now."""
        self._sleepers = [(t, f) for t, f in self._sleepers if not f.done()]
        return len(self._sleepers)

    def advance(self, seconds: float) -> None:
        self.set(self._now + seconds)

    def set(self, when: float) -> None:
        self._now = max(self._now, when)
        remaining = []
        for wake_at, future in self._sleepers:
            if future.done():
                continue
            if wake_at <= self._now:
                future.set_result(None)
            else:
                remaining.append((wake_at, future))
        self._sleepers = remaining
