"""The engine's leases: a heartbeat for the jobs it holds, and taking over expired ones.

A worker extends the leases of the jobs it holds every lease/3. Any engine takes over jobs
whose lease ran out (their worker died) and resumes them by status. The jobs this engine
itself still holds are never resumed a second time, even when their lease lapsed because its
own heartbeat fell a whole lease behind (a stalled event loop): taking them over only renews
the lease, whereas resuming would queue a job whose submit is still with the provider.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import KW_ONLY, dataclass

from bot.clock import Clock
from bot.models import Job
from storage.base import DatabaseFault
from storage.sql import Repository

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Leases:
    """Keeps the leases of the jobs ``held()`` returns, and hands jobs whose lease expired
    elsewhere to ``resume``; ``park`` sleeps between rounds."""

    repo: Repository
    clock: Clock
    _: KW_ONLY
    worker_id: str
    lease_seconds: float
    park: Callable[[float, None], Awaitable[None]]
    held: Callable[[], list[int]]
    resume: Callable[[Job], Awaitable[None]]

    async def keep(self, running: Callable[[], bool]) -> None:
        """Every lease/3 while ``running()``: extend the held jobs' leases, then take over
        expired ones."""
        while running():
            await self.park(self.lease_seconds / 3, None)
            try:
                if held := self.held():
                    await self.repo.heartbeat(
                        worker_id=self.worker_id,
                        job_ids=held,
                        now=self.clock.now(),
                        lease_seconds=self.lease_seconds,
                    )
                await self.reclaim()
            except Exception as err:
                quiet = isinstance(err, DatabaseFault)
                log.error("lease upkeep failed: %s", err, exc_info=not quiet)

    async def reclaim(self) -> None:
        """Take over the jobs whose lease expired and resume those not held here."""
        jobs = await self.repo.reclaim_expired(
            worker_id=self.worker_id, now=self.clock.now(), lease_seconds=self.lease_seconds
        )
        held = set(self.held())
        for job in jobs:
            if job.id in held:
                log.warning("job %d: kept its lease, which lapsed while it ran here", job.id)
            else:
                await self.resume(job)
