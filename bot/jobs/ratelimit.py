"""Per-provider admission: a number of slots (concurrency) and a token bucket (rate).

Both are plain counters read by the provider's dispatcher; nothing here sleeps. The
dispatcher asks how many jobs it may start now (:meth:`ProviderGate.admissible`) and, when
that is zero because of the rate, when the next one may start (:meth:`ProviderGate.next_at`),
then parks on the injected clock until then or until a slot frees.
"""

from __future__ import annotations

import math

from bot.clock import Clock


class TokenBucket:
    """``rate_per_minute`` tokens per minute, holding at most ``burst``; monotonic time."""

    def __init__(self, clock: Clock, rate_per_minute: float | None, burst: int) -> None:
        self._clock = clock
        self._per_second = rate_per_minute / 60.0 if rate_per_minute else None
        self._burst = float(burst)
        self._tokens = float(burst)
        self._stamp = clock.monotonic()
        self._blocked_until = 0.0  # monotonic; a provider said "slow down" until then

    def _refill(self) -> None:
        now = self._clock.monotonic()
        if self._per_second is not None:
            elapsed = max(0.0, now - self._stamp)
            self._tokens = min(self._burst, self._tokens + elapsed * self._per_second)
        self._stamp = now

    @property
    def limited(self) -> bool:
        return self._per_second is not None

    def available(self) -> int:
        if self._clock.monotonic() < self._blocked_until:
            return 0
        if self._per_second is None:
            return 1 << 30
        self._refill()
        return math.floor(self._tokens + 1e-9)

    def take(self, count: int = 1) -> None:
        if self._per_second is None:
            return
        self._refill()
        self._tokens -= count

    def give_back(self, count: int = 1) -> None:
        """Return tokens taken for work that did not reach the provider."""
        if self._per_second is not None:
            self._tokens = min(self._burst, self._tokens + count)

    def block_for(self, seconds: float) -> None:
        """Take nothing for ``seconds`` (the provider answered 429 with ``retry_after``)."""
        self._blocked_until = max(self._blocked_until, self._clock.monotonic() + seconds)

    def seconds_until_available(self) -> float:
        now = self._clock.monotonic()
        if now < self._blocked_until:
            return self._blocked_until - now
        if self._per_second is None:
            return 0.0
        self._refill()
        missing = 1.0 - self._tokens
        return 0.0 if missing <= 1e-9 else missing / self._per_second


class ProviderGate:
    """Concurrency slots plus a rate for one provider."""

    def __init__(
        self, clock: Clock, *, concurrency: int, rate_per_minute: float | None, burst: int
    ) -> None:
        self.concurrency = concurrency
        self.running = 0
        self.bucket = TokenBucket(clock, rate_per_minute, burst)

    @property
    def free_slots(self) -> int:
        return max(0, self.concurrency - self.running)

    def admissible(self) -> int:
        """How many new jobs may start now."""
        free = self.free_slots
        return min(free, self.bucket.available()) if free else 0

    def next_at(self) -> float | None:
        """Seconds until the rate admits another job, when slots are free but tokens not."""
        if not self.free_slots:
            return None
        wait = self.bucket.seconds_until_available()
        return wait if wait > 0 else None
