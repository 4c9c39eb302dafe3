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

from bot.clock import Clock
from bot.models import Job
from storage.base import DatabaseFault
from storage.sql import Repository

log = logging.getLogger(__name__)


class Leases:
    def __init__(
        self,
        repo: Repository,
        clock: Clock,
        *,
        worker_id: str,
        lease_seconds: float,
        park: Callable[[float, None], Awaitable[None]],
        held: Callable[[], list[int]],
        resume: Callable[[Job], Awaitable[None]],
    ) -> None:
        self._repo = repo
        self._clock = clock
        self._worker_id = worker_id
        self._lease = lease_seconds
        self._park = park
        self._held = held
        self._resume = resume

    async def keep(self, running: Callable[[], bool]) -> None:
        """Every lease/3 while ``running()``: extend the held jobs' leases, then take over
        expired ones."""
        while running():
            await self._park(self._lease / 3, None)
            try:
                if held := self._held():
                    await self._repo.heartbeat(
                        worker_id=self._worker_id,
                        job_ids=held,
                        now=self._clock.now(),
                        lease_seconds=self._lease,
                    )
                await self.reclaim()
            except Exception as err:
                quiet = isinstance(err, DatabaseFault)
                log.error("lease upkeep failed: %s", err, exc_info=not quiet)

    async def reclaim(self) -> None:
        """Take over the jobs whose lease expired and resume those not held here."""
        jobs = await self._repo.reclaim_expired(
            worker_id=self._worker_id, now=self._clock.now(), lease_seconds=self._lease
        )
        held = set(self._held())
        for job in jobs:
            if job.id in held:
                log.warning("job %d: kept its lease, which lapsed while it ran here", job.id)
            else:
                await self._resume(job)
