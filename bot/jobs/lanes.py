"""Per-provider state the engine keeps in memory: a lane per provider, an entry per job."""

from __future__ import annotations

import asyncio
import math
from collections import deque
from dataclasses import dataclass, field

from bot.clock import Clock
from bot.models import Job
from bot.providers.base import Provider
from storage.base import AccountLimits

from .limits import EngineConfig
from .ratelimit import ProviderGate


@dataclass(slots=True)
class Lane:
    """One provider: its gate, its dispatcher's wake-up, and when requeued work is due."""

    name: str
    provider: Provider
    gate: ProviderGate
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    fixed_prefetch: int | None = None  # configured; None: adapt (see prefetch)
    claim_seconds: float = 0.0  # moving average of a claim's duration
    hold_seconds: float | None = None  # moving average of how long a job holds a slot
    ready: deque[Job] = field(default_factory=deque)  # claimed, waiting for a slot
    due: list[float] = field(default_factory=list)  # heap of run_after times
    freed: deque[float] = field(default_factory=deque)  # monotonic times slots freed
    #: Jobs the provider has finished with whose account slot the next claim frees (in its
    #: own transaction, so the slot passes straight to the job it claims).
    releases: list[int] = field(default_factory=list)
    #: The provider account shared with other processes (claims take its slots in the
    #: database); None when this process is the only one.
    account: AccountLimits | None = None
    paused: bool = False  # the provider refused the account: claim nothing (see pausing)
    trial: bool = False  # while paused, a probe lets one job through to test the account

    def claim_count(self) -> int:
        """How many jobs to claim now: free slots plus the prefetch, less what is already
        claimed. While paused, none, except the one trial job a probe allows (used up here)."""
        if self.paused:
            if not self.trial or self.ready or self.gate.admissible() < 1:
                return 0
            self.trial = False
            return 1
        return self.gate.admissible() + self.prefetch - len(self.ready)

    @property
    def prefetch(self) -> int:
        """Jobs to claim ahead so a freed slot starts the next one at once.

        Enough to cover one claim's round trip at the rate slots free up (Little's law,
        doubled for safety): many for instant jobs, none for jobs that take seconds, since a
        job claimed ahead is one a newly arriving guild can no longer overtake. None either
        when the account is shared: a job claimed ahead holds an account slot that another
        process could be using.
        """
        if self.account is not None:
            return 0
        if self.fixed_prefetch is not None:
            return self.fixed_prefetch
        if self.gate.bucket.limited or not self.hold_seconds:
            return 0
        per_slot = self.claim_seconds / self.hold_seconds
        return min(self.gate.concurrency, math.floor(2 * self.gate.concurrency * per_slot + 0.5))


def build_lane(
    name: str, provider: Provider, config: EngineConfig, clock: Clock, *, shared: bool
) -> Lane:
    """A provider's lane; ``shared``: other processes use the same account (its limits are
    taken in the database), and this process's gate caps only its own share."""
    account = config.account(provider.capabilities)
    slots = min(account.concurrency, config.worker_concurrency or account.concurrency)
    gate = ProviderGate(
        clock, concurrency=slots, rate_per_minute=account.rate_per_minute, burst=account.burst
    )
    return Lane(
        name=name,
        provider=provider,
        gate=gate,
        fixed_prefetch=config.prefetch,
        account=account if shared else None,
    )


@dataclass(slots=True)
class ActiveJob:
    task: asyncio.Task[None]
    interrupt: asyncio.Event
    lane: Lane
    began: float  # monotonic time the job took its slot
    holds_slot: bool = True  # False once the provider is done with the job
