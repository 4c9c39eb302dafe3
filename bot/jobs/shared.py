"""Working beside other engine processes on one database (``Repository.multi_process``).

Each provider's account limits are taken in the claim's own transaction (see
``Repository.claim(account=...)``), so every process together stays within the account;
this process's gate only caps its own share. Other processes' changes arrive as signals
from the database (PostgreSQL ``LISTEN/NOTIFY``): work queued or an account slot freed wakes
that provider's dispatcher, a cancel stops the job if this process holds it (and tells the
provider, which the canceller may not be able to reach). The engine's safety poll stays as a
net for anything missed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from typing import Any

from bot.models import Job, JobStatus
from storage.base import QueueSignal, SignalKind, Subscription

from .batch import cancel_items
from .context import RunContext, cancel_at_provider
from .lanes import Lane

log = logging.getLogger(__name__)

Spawn = Callable[[Coroutine[Any, Any, None], str], asyncio.Task[None]]
_REMEMBERED_CANCELS = 10_000


@dataclass(eq=False)
class SharedQueue:
    ctx: RunContext
    lanes: Mapping[str, Lane]
    spawn: Spawn
    interrupt: Callable[[int], bool]
    worker_id: str
    _subscription: Subscription | None = field(default=None, init=False)
    #: Jobs this process cancelled itself.
    _cancelled_here: set[int] = field(default_factory=set, init=False)

    async def start(self) -> None:
        if self._subscription is not None:
            return
        try:
            self._subscription = await self.ctx.repo.subscribe(self._signal)
        except Exception:
            # Work still gets done, only later: the safety poll finds it.
            log.warning("cannot listen for other processes' changes", exc_info=True)

    async def stop(self) -> None:
        if self._subscription is not None:
            subscription, self._subscription = self._subscription, None
            await subscription.close()

    def cancelling(self, job_id: int) -> None:
        """This process cancels ``job_id`` and tells the provider itself."""
        if len(self._cancelled_here) >= _REMEMBERED_CANCELS:
            self._cancelled_here.clear()
        self._cancelled_here.add(job_id)

    def canceller_tells_provider(self, job: Job) -> bool:
        """Whether the process cancelling ``job`` (as it was) cancels it at the provider: when
        it holds the job, or nobody does any more. Otherwise the holder does, when it hears
        of the cancel, so a front end without provider access needs none."""
        lapsed = job.lease_expires_at is None or job.lease_expires_at <= self.ctx.clock.now()
        return job.lease_owner == self.worker_id or lapsed

    async def account_wait(self, lane: Lane) -> float:
        """Seconds until the shared account's rate admits another submit (0: now)."""
        account = lane.account
        if account is None or account.rate_per_minute is None:
            return 0.0
        return await self.ctx.repo.account_wait(
            lane.name, now=self.ctx.clock.now(), account=account
        )

    def release(self, lane: Lane, job_id: int, *, claiming: bool) -> None:
        """The provider is done with the job: free its account slot now, not only once the
        job's next status is written. ``claiming``: the dispatcher's next claim frees it in
        its own transaction (woken by the caller), so the slot passes straight to the next
        job and other processes are not woken for a slot this one takes."""
        if claiming and lane.account is not None:
            lane.releases.append(job_id)
        else:
            self.release_apart([job_id])

    def release_apart(self, job_ids: list[int]) -> None:
        """Free the account slots of ``job_ids`` without claiming (other processes hear)."""
        for job_id in job_ids:
            self.spawn(self._release(job_id), f"release-{job_id}")

    async def _release(self, job_id: int) -> None:
        try:
            await self.ctx.repo.release_account(job_id)
        except Exception:
            log.warning("could not free job %d's account slot early", job_id, exc_info=True)

    async def block(self, provider: str, seconds: float) -> None:
        """Hold every process off ``provider`` (it answered "slow down")."""
        try:
            await self.ctx.repo.block_account(provider, until=self.ctx.clock.now() + seconds)
        except Exception:
            log.warning("could not share the hold-off for %s", provider, exc_info=True)

    def _signal(self, signal: QueueSignal) -> None:
        if signal.kind is SignalKind.CANCELLED and signal.job_id is not None:
            if signal.job_id in self._cancelled_here:
                self._cancelled_here.discard(signal.job_id)
            elif self.interrupt(signal.job_id):
                self.spawn(self._tell_provider(signal.job_id), f"cancel-{signal.job_id}")
            return
        for lane in self.lanes.values():
            if signal.kind is SignalKind.RESYNC or lane.name == signal.provider:
                lane.wake.set()

    async def _tell_provider(self, job_id: int) -> None:
        """Another process cancelled a job running here: cancel it at the provider."""
        job = await self.ctx.repo.get_job(job_id)
        if job is not None and job.status is JobStatus.CANCELLED and job.provider_handle:
            log.info("job %d was cancelled elsewhere: cancelling it at %s", job_id, job.provider)
            await cancel_at_provider(self.ctx, job.provider, job.provider_handle)
        if job is not None and job.status is JobStatus.CANCELLED:
            await cancel_items(self.ctx, job)  # a batch's accepted requests
