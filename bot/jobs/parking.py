"""Task bookkeeping for the engine's drain mode.

Every engine task waits through :meth:`Parking.park`, which records what it waits for (a
clock time, an event, or both). :meth:`Parking.quiet` says whether every task is parked on
something that has not happened yet; the drain mode then moves a ManualClock to
:meth:`Parking.next_wake`. Nothing here sleeps on the wall clock.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from bot.clock import Clock

log = logging.getLogger(__name__)


@dataclass(slots=True)
class _Park:
    deadline: float | None  # clock time this wait ends, None: only the event ends it
    event: asyncio.Event | None


class Parking:
    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self.tasks: set[asyncio.Task[None]] = set()
        self._parks: dict[int, _Park] = {}
        #: Set whenever a task parks, wakes, starts or ends.
        self.changed = asyncio.Event()

    def spawn(self, coro: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        task = asyncio.create_task(coro, name=name)
        self.tasks.add(task)
        task.add_done_callback(self._task_done)
        self.changed.set()
        return task

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self.tasks.discard(task)
        self.changed.set()
        if not task.cancelled() and task.exception() is not None:
            log.error("engine task %s died", task.get_name(), exc_info=task.exception())

    async def park(self, seconds: float | None, event: asyncio.Event | None) -> None:
        """Wait ``seconds`` on the clock, or until ``event`` is set, whichever comes first."""
        if event is not None and event.is_set():
            return
        if seconds is not None and seconds <= 0:
            await asyncio.sleep(0)
            return
        park = _Park(
            deadline=self._clock.now() + seconds if seconds is not None else None, event=event
        )
        key = id(park)
        self._parks[key] = park
        self.changed.set()
        try:
            if park.deadline is None:
                assert event is not None
                await event.wait()
            elif event is None:
                await self._sleep_until(park.deadline)
            else:
                sleeper = asyncio.ensure_future(self._sleep_until(park.deadline))
                waiter = asyncio.ensure_future(event.wait())
                try:
                    await asyncio.wait((sleeper, waiter), return_when=asyncio.FIRST_COMPLETED)
                finally:
                    sleeper.cancel()
                    waiter.cancel()
        finally:
            del self._parks[key]
            self.changed.set()

    async def _sleep_until(self, deadline: float) -> None:
        # Measured when the sleep starts: time may have moved since the park was recorded.
        await self._clock.sleep(deadline - self._clock.now())

    def quiet(self) -> bool:
        """Every task is parked on something that has not happened yet."""
        live = sum(1 for task in self.tasks if not task.done())
        if len(self._parks) < live:
            return False
        now = self._clock.now()
        for park in self._parks.values():
            if park.event is not None and park.event.is_set():
                return False
            if park.deadline is not None and park.deadline <= now:
                return False
        return True

    def busy(self) -> int:
        """Tasks not parked, or parked on something that has already happened."""
        now = self._clock.now()
        live = sum(1 for task in self.tasks if not task.done())
        waiting = sum(
            1
            for park in self._parks.values()
            if not (park.event is not None and park.event.is_set())
            and not (park.deadline is not None and park.deadline <= now)
        )
        return max(0, live - waiting)

    def next_wake(self) -> float | None:
        deadlines = [p.deadline for p in self._parks.values() if p.deadline is not None]
        return min(deadlines) if deadlines else None

    async def drain(
        self,
        idle: Callable[[], Awaitable[bool]],
        *,
        advance: Callable[[float], None] | None,
        until: float,
    ) -> None:
        """Return once every task is parked and ``idle()`` says no work remains; meanwhile,
        whenever every task is parked, move time to the next wake-up with ``advance``."""
        while True:
            self.changed.clear()
            if self.quiet():
                if await idle():
                    return
                wake = self.next_wake() if self.quiet() else None
                if wake is not None and advance is not None:
                    if wake > until:
                        raise RuntimeError("run_until_idle: work remains past the time limit")
                    advance(wake)
                    continue
            await self.changed.wait()
