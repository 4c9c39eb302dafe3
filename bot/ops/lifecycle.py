"""Keeping stored data bounded: retention, servers the bot left, and a member's erasure.

* Retention (``KONTEXT_RETENTION_DAYS``, 0 keeps everything forever): prompts of jobs
  finished longer ago are erased, outputs made longer ago expire, and image bytes nobody
  needs any more (outputs, reference images) are deleted. Runs at start and every hour.
* A server the bot left: the Discord side reports it (:meth:`DataLifecycle.guild_left`, and
  :meth:`DataLifecycle.sync_guilds` at start); after ``KONTEXT_GUILD_DATA_DAYS`` everything
  stored for it is deleted, unless the bot came back (:meth:`DataLifecycle.guild_present`).
* A member's erasure (:meth:`DataLifecycle.forget_user`): their unfinished jobs are
  cancelled, their prompts erased and their images deleted at once.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import KW_ONLY, dataclass, field
from typing import Protocol

from bot.clock import Clock
from bot.errors import KontextError
from bot.models import ACTIVE_STATUSES, DataErased, Frozen, Job, JobStatus
from storage.sql import Repository

log = logging.getLogger(__name__)

DAY = 86_400.0
_UNFINISHED = [JobStatus.QUEUED, *ACTIVE_STATUSES]


class Canceller(Protocol):
    """The engine's cancel (it also stops a running job at the provider)."""

    async def cancel(self, job_id: int, *, by_user_id: int, moderator: bool = False) -> Job: ...


class RetentionReport(Frozen):
    prompts: int  # jobs whose prompt was erased
    outputs: int  # outputs expired
    blobs: int  # image files (or rows) deleted
    guilds: int  # departed servers whose data was deleted


@dataclass(eq=False)
class DataLifecycle:
    repo: Repository
    engine: Canceller
    clock: Clock
    _: KW_ONLY
    retention_days: int
    guild_data_days: int
    runs: int = field(default=0, init=False)  # passes completed (for tests and the curious)

    async def run_once(self) -> RetentionReport:
        """One pass of retention and of the departed servers' deletion."""
        now = self.clock.now()
        prompts = outputs = blobs = 0
        if self.retention_days:
            keep = self.retention_days * DAY
            prompts, outputs = await self.repo.retire_before(cutoff=now - keep, now=now)
            blobs = await self.repo.purge_expired(now=now, reference_retention_seconds=keep)
        guilds = 0
        if self.guild_data_days:
            left_before = now - self.guild_data_days * DAY
            for guild_id in await self.repo.departed_guilds(left_before=left_before):
                if await self.delete_guild(guild_id) is not None:
                    guilds += 1
        report = RetentionReport(prompts=prompts, outputs=outputs, blobs=blobs, guilds=guilds)
        self.runs += 1
        if prompts or outputs or blobs or guilds:
            log.info(
                "retention: %d prompts erased, %d outputs expired, %d images deleted, "
                "%d departed servers deleted",
                prompts,
                outputs,
                blobs,
                guilds,
            )
        return report

    # --- servers ----------------------------------------------------------------------------
    async def guild_left(self, guild_id: int) -> None:
        """The bot was removed from a server: its data goes after the grace period."""
        await self.repo.mark_guild_departed(guild_id, now=self.clock.now())

    async def guild_present(self, guild_id: int) -> None:
        """The bot is (back) in a server: keep its data."""
        await self.repo.mark_guild_present(guild_id)

    async def sync_guilds(self, present: Iterable[int]) -> None:
        """At start: every server with stored data that the bot is no longer in counts as
        left now (unless already counted); every server it is in is kept."""
        here = set(present)
        now = self.clock.now()
        for guild_id in await self.repo.departed_guilds(left_before=now + 1):
            if guild_id in here:
                await self.repo.mark_guild_present(guild_id)
        for guild_id in await self.repo.guilds_with_data():
            if guild_id not in here and guild_id != 0:
                await self.repo.mark_guild_departed(guild_id, now=now)

    async def delete_guild(self, guild_id: int) -> DataErased | None:
        """Cancel a server's unfinished jobs and delete everything stored for it; ``None``
        when a job could not be stopped yet (it is being posted): tried again next pass."""
        await self._cancel_all(guild_id=guild_id, user_id=None)
        erased = await self.repo.delete_guild_data(guild_id, now=self.clock.now())
        if erased is not None:
            log.info("deleted the data of server %d, which the bot left", guild_id)
        return erased

    # --- members ----------------------------------------------------------------------------
    async def forget_user(self, user_id: int, *, guild_id: int | None) -> DataErased:
        """Erase a member's prompts and images (in one server, or everywhere with ``None``).
        ``still_running`` counts jobs being posted right now, which are left alone."""
        await self._cancel_all(guild_id=guild_id, user_id=user_id)
        erased = await self.repo.erase_user(user_id, guild_id=guild_id, now=self.clock.now())
        log.info("erased a member's data: %d jobs, %d images", erased.jobs, erased.images)
        return erased

    async def _cancel_all(self, *, guild_id: int | None, user_id: int | None) -> None:
        jobs = await self.repo.list_jobs(
            guild_id=guild_id, user_id=user_id, statuses=_UNFINISHED, limit=100_000
        )
        for job in jobs:
            try:
                await self.engine.cancel(job.id, by_user_id=job.user_id, moderator=True)
            except KontextError as err:
                log.info("job %d not cancelled (%s)", job.id, err.code)
