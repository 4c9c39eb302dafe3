"""How often the bot edits messages in one channel: a token bucket per channel.

Discord limits message edits per channel (its published buckets allow about five per five
seconds); the status board waits for a token before each edit, so a burst of jobs in one
channel is shown a little later instead of being answered with 429s. Written by hand: the
waiting must run on the injectable clock, which the rate-limit libraries do not take.
"""

from __future__ import annotations

import asyncio

from bot.clock import Clock

EDITS_PER_WINDOW = 4  # one below Discord's five, leaving room for other edits in the channel
WINDOW_SECONDS = 5.0


class ChannelBudget:
    """At most ``per`` edits in any ``seconds`` per channel, waited for in turn."""

    def __init__(
        self, clock: Clock, *, per: int = EDITS_PER_WINDOW, seconds: float = WINDOW_SECONDS
    ) -> None:
        self.clock = clock
        self.per = per
        self.seconds = seconds
        self._sent: dict[int, list[float]] = {}
        self._locks: dict[int, asyncio.Lock] = {}

    async def take(self, channel_id: int) -> None:
        """Wait until an edit in ``channel_id`` fits the budget, and count it."""
        lock = self._locks.setdefault(channel_id, asyncio.Lock())
        async with lock:
            sent = self._sent.setdefault(channel_id, [])
            while True:
                now = self.clock.monotonic()
                sent[:] = [t for t in sent if now - t < self.seconds]
                if len(sent) < self.per:
                    sent.append(now)
                    return
                await self.clock.sleep(self.seconds - (now - sent[0]))
