"""Time as a dependency, so that tests never wait on the wall clock."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable
from typing import Protocol, TypeVar

T = TypeVar("T")


class Clock(Protocol):
    """Wall time (epoch seconds) for records, monotonic time for intervals, and sleeping.

    ``alarm`` waits like ``sleep`` but marks the wait as a bound on other work (a timeout),
    not as work waiting for time: a test clock that moves time forward whenever everything
    is asleep must not fire a timeout while the work it guards is still running.
    """

    def now(self) -> float: ...

    def monotonic(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...

    async def alarm(self, seconds: float) -> None: ...


async def within(clock: Clock, seconds: float, work: Awaitable[T]) -> T:
    """``work``'s result, or :class:`TimeoutError` once ``seconds`` have passed on ``clock``.

    The work is cancelled at the deadline wherever it is, reading a body included, so one
    bound covers a whole exchange. Written here rather than with ``asyncio.timeout`` because
    the deadline must be measured on the injected clock, which tests move by hand.
    """
    task = asyncio.ensure_future(work)
    if seconds <= 0:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        raise TimeoutError
    timer = asyncio.ensure_future(clock.alarm(seconds))
    try:
        await asyncio.wait((task, timer), return_when=asyncio.FIRST_COMPLETED)
    finally:
        timer.cancel()
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    if task.cancelled():
        raise TimeoutError
    return task.result()


class SystemClock:
    """The real clock."""

    def now(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))

    async def alarm(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


class ManualClock:
    """A clock that moves only when told to; sleepers wake when time passes their deadline.

    ``sleep`` parks the caller until :meth:`advance` (or :meth:`set`) moves time to or past
    its wake-up time, so tests decide exactly when timers fire. An ``alarm`` is kept apart
    from the sleepers (it is not counted in :attr:`sleepers`) and fires the same way.
    """

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self._now = start
        self._start_monotonic = start
        self._sleepers: list[tuple[float, asyncio.Future[None]]] = []
        self._alarms: list[tuple[float, asyncio.Future[None]]] = []

    def now(self) -> float:
        return self._now

    def monotonic(self) -> float:
        return self._now - self._start_monotonic

    async def sleep(self, seconds: float) -> None:
        await self._wait(self._sleepers, seconds)

    async def alarm(self, seconds: float) -> None:
        await self._wait(self._alarms, seconds)

    async def _wait(self, waits: list[tuple[float, asyncio.Future[None]]], seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        waits.append((self._now + seconds, future))
        await future

    def next_wake(self) -> float | None:
        """The earliest time a sleeper waits for, if any."""
        waits = [t for t, f in self._sleepers if not f.done()]
        return min(waits) if waits else None

    def next_alarm(self) -> float | None:
        """The earliest time an alarm waits for, if any."""
        waits = [t for t, f in self._alarms if not f.done()]
        return min(waits) if waits else None

    @property
    def sleepers(self) -> int:
        """How many tasks are parked in :meth:`sleep` right now."""
        self._sleepers = [(t, f) for t, f in self._sleepers if not f.done()]
        return len(self._sleepers)

    def advance(self, seconds: float) -> None:
        self.set(self._now + seconds)

    def set(self, when: float) -> None:
        self._now = max(self._now, when)
        self._sleepers = self._wake(self._sleepers)
        self._alarms = self._wake(self._alarms)

    def _wake(
        self, waits: list[tuple[float, asyncio.Future[None]]]
    ) -> list[tuple[float, asyncio.Future[None]]]:
        remaining = []
        for wake_at, future in waits:
            if future.done():
                continue
            if wake_at <= self._now:
                future.set_result(None)
            else:
                remaining.append((wake_at, future))
        return remaining
