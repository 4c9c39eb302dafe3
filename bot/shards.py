"""Gateway sharding facts the Discord client builds on (plain values, no ``discord`` import).

A guild's events travel on shard ``(guild_id >> 22) % shard_count``. Discord lets shards
IDENTIFY ``max_concurrency`` at a time (``session_start_limit.max_concurrency`` from
``GET /gateway/bot``): shards whose ``shard_id % max_concurrency`` is equal share a bucket,
and each bucket may IDENTIFY once per 5 seconds. discord.py's default hook simply waits 5 s
before every IDENTIFY but the first; :class:`IdentifyPacer` waits only as the limit requires,
so a large bot with a high ``max_concurrency`` starts its shards in parallel.
"""

from __future__ import annotations

import asyncio

from bot.clock import Clock, SystemClock

IDENTIFY_WINDOW = 5.0


def shard_of(guild_id: int, shard_count: int) -> int:
    return (guild_id >> 22) % shard_count


class IdentifyPacer:
    """Call :meth:`wait` right before each IDENTIFY (discord.py's ``before_identify_hook``)."""

    def __init__(
        self, max_concurrency: int, *, window: float = IDENTIFY_WINDOW, clock: Clock | None = None
    ) -> None:
        self.max_concurrency = max(1, max_concurrency)
        self._window = window
        self._clock = clock or SystemClock()
        self._last: dict[int, float] = {}  # bucket -> monotonic time of its last IDENTIFY
        self._locks: dict[int, asyncio.Lock] = {}

    async def wait(self, shard_id: int) -> None:
        bucket = shard_id % self.max_concurrency
        async with self._locks.setdefault(bucket, asyncio.Lock()):
            last = self._last.get(bucket)
            if last is not None:
                wait = last + self._window - self._clock.monotonic()
                if wait > 0:
                    await self._clock.sleep(wait)
            self._last[bucket] = self._clock.monotonic()
