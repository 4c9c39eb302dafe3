"""The repository API, written once against a tiny query interface: everything the bot
knows, behind one async class, two backends (storage.sqlite, storage.postgres).

Queue bookkeeping (lanes, running counts, the status history) lives in triggers in the
migrations, so every status change here is one guarded ``UPDATE``. The connection, the blob
bytes, the claim and the provider accounts are per backend; the rest of the API is in
storage.records, storage.creative and storage.operations.
"""

from __future__ import annotations

import abc
import logging
from collections.abc import Callable, Sequence

from bot.models import TERMINAL_STATUSES, Job, JobStatus, NewJob
from storage import rows
from storage.base import (
    AccountLimits,
    ClaimOrder,
    EnqueueLimits,
    LimitExceeded,
    LimitKind,
    QueueSignal,
    Subscription,
)
from storage.creative import CreativeRecordsMixin
from storage.operations import OperationsMixin
from storage.queries import (
    JOB_INSERT,
    JOB_VALUES,
    LIMIT_COUNTS,
    RECLAIM,
    REFERENCE_INSERT,
    day_start,
    job_values,
    job_weight,
)
from storage.records import RecordsMixin
from storage.rows import ACTIVE_SQL, BACKLOG_SQL, OPEN_SQL
from storage.sqlbase import Tx

log = logging.getLogger(__name__)


class Repository(CreativeRecordsMixin, OperationsMixin, RecordsMixin):
    """The repository API, on top of :class:`storage.sqlbase.Tx`; a backend supplies what
    is declared abstract here.

    Times are epoch seconds passed in by the caller (``now``), never read from the system
    clock here, so tests control time. Every write that changes a job's status is a
    compare-and-set."""

    #: Several processes may share this database: account limits are enforced in the claim
    #: and changes are announced to :meth:`subscribe` (PostgreSQL). When False (SQLite, one
    #: process) the engine's own gate holds the account and nothing needs announcing.
    multi_process: bool

    # --- lifecycle ------------------------------------------------------------------------------
    @abc.abstractmethod
    async def connect(self) -> None:
        """Open the connection (pool) and apply migrations. Raises DatabaseTooNew or
        DatabaseUnusable with a clear message."""

    @abc.abstractmethod
    async def close(self) -> None: ...

    @abc.abstractmethod
    async def schema_version(self) -> int: ...

    @abc.abstractmethod
    async def get_blob(self, content_hash: str) -> bytes | None: ...

    # --- the queue ------------------------------------------------------------------------------
    async def enqueue(self, job: NewJob, *, now: float, limits: EnqueueLimits | None = None) -> Job:
        """Persist a job and its references as ``queued`` in one transaction, after checking
        ``limits`` in that same transaction (raises LimitExceeded, writing nothing)."""
        async with self._transaction() as tx:
            await self._lock_guild_queue(tx, job.guild_id)
            if limits is not None:
                await self._check_limits(tx, job, now, limits)
            row = await tx.fetchrow(JOB_INSERT.format(source=JOB_VALUES), *job_values(job, now))
            assert row is not None
            if job.references:
                await tx.executemany(
                    REFERENCE_INSERT,
                    [
                        (
                            row["id"],
                            position,
                            ref.source.value,
                            ref.content_hash,
                            ref.url,
                            ref.message_id,
                            ref.attachment_id,
                            ref.output_id,
                            ref.width,
                            ref.height,
                        )
                        for position, ref in enumerate(job.references)
                    ],
                )
            if limits is not None and limits.max_guild_running is not None:
                # After the insert, whose trigger created the row: locks stay in claim order.
                await tx.execute(
                    "UPDATE guild_load SET max_running = ? WHERE guild_id = ? AND max_running <> ?",
                    limits.max_guild_running,
                    job.guild_id,
                    limits.max_guild_running,
                )
        return rows.job_from_row(row)

    async def _check_limits(self, tx: Tx, job: NewJob, now: float, limits: EnqueueLimits) -> None:
        counts = await tx.fetchrow(
            LIMIT_COUNTS,
            job.guild_id,
            job.user_id,
            job.guild_id,
            job.guild_id,
            job.user_id,
            day_start(now),
        )
        assert counts is not None
        checks = (
            (LimitKind.USER_ACTIVE, counts["user_active"], limits.max_user_active),
            (LimitKind.GUILD_QUEUE, counts["guild_queue"], limits.max_guild_queue),
            (LimitKind.DAILY_QUOTA, counts["today"], limits.daily_quota or None),
        )
        weight = job_weight(job)
        for kind, current, maximum in checks:
            wanted = 1 if kind is LimitKind.GUILD_QUEUE else weight
            if maximum is not None and int(current) + wanted > maximum:
                raise LimitExceeded(kind, int(current), maximum, requested=wanted)

    async def claim(
        self,
        *,
        worker_id: str,
        provider: str,
        now: float,
        lease_seconds: float,
        limit: int = 1,
        account: AccountLimits | None = None,
        release: Sequence[int] = (),
    ) -> list[Job]:
        """Atomically take up to ``limit`` runnable queued jobs for ``provider``, fairly:
        guilds take turns (least recently served first), inside a guild users take turns,
        inside a user oldest first. Skips guilds already running their ``max_guild_running``
        and jobs whose ``run_after`` is in the future. Claimed jobs move to ``submitting``
        with a lease owned by ``worker_id``. Safe across processes (PostgreSQL:
        ``FOR UPDATE SKIP LOCKED``).

        With ``account`` (``multi_process`` backends), each claim also takes a slot and a
        rate token of the provider's account inside its transaction: the provider's jobs in
        ``submitting`` or ``running`` are counted in the database and a token bucket row is
        kept per provider, so all processes together stay within the account. SQLite serves
        one process, whose engine gate holds the account, and ignores it.

        ``release``: jobs the provider has finished with (see :meth:`release_account`),
        freed in the first claim's transaction, so their slots pass straight to the jobs
        claimed here; other processes hear only of the slots this claim leaves free."""
        lease_until = float(now + lease_seconds)
        return await self._claim(
            ClaimOrder(worker_id, provider, float(now), lease_until, limit, account, release)
        )

    @abc.abstractmethod
    async def _claim(self, order: ClaimOrder) -> list[Job]:
        """The backend's :meth:`claim`."""

    @abc.abstractmethod
    async def account_wait(self, provider: str, *, now: float, account: AccountLimits) -> float:
        """Seconds until the account's rate (or a provider's "slow down") admits another
        submit; 0 when it admits one now."""

    @abc.abstractmethod
    async def release_account(self, job_id: int) -> None:
        """The provider has finished with the job (its outputs are still being stored): it
        no longer holds an account slot, though its status still says so until the next
        step is written. Other processes hear of the freed slot."""

    @abc.abstractmethod
    async def block_account(self, provider: str, *, until: float) -> None:
        """No process submits to ``provider`` before ``until`` (it answered 429)."""

    @abc.abstractmethod
    async def subscribe(self, on_signal: Callable[[QueueSignal], None]) -> Subscription | None:
        """Call ``on_signal`` (on the event loop) whenever any process queues a job, frees
        an account slot or cancels a job; ``None`` when the backend has no other processes
        to hear from. Close the subscription when done."""

    async def heartbeat(
        self, *, worker_id: str, job_ids: Sequence[int], now: float, lease_seconds: float
    ) -> int:
        """Extend the leases this worker still holds; returns how many were extended."""
        if not job_ids:
            return 0
        marks = ", ".join("?" * len(job_ids))
        extended = await self._fetch(
            f"UPDATE jobs SET lease_expires_at = ? WHERE lease_owner = ? "  # noqa: S608
            f"AND status IN ({ACTIVE_SQL}) AND id IN ({marks}) RETURNING id",
            float(now + lease_seconds),
            worker_id,
            *job_ids,
        )
        return len(extended)

    _LOCK_SKIP = ""  # the row-lock clause the reclaim's inner SELECT takes (PostgreSQL only)

    async def reclaim_expired(
        self, *, worker_id: str, now: float, lease_seconds: float
    ) -> list[Job]:
        """Take over active jobs whose lease expired (their worker died), keeping their
        status and provider handle, so they are resumed (polled), never resubmitted."""
        found = await self._fetch(
            RECLAIM.replace("{lock}", self._LOCK_SKIP),
            worker_id,
            float(now + lease_seconds),
            float(now),
            float(now),
            float(now),
        )
        jobs = sorted((rows.job_from_row(r) for r in found), key=lambda j: j.id)
        if jobs:
            log.info("worker %s reclaimed %d job(s) with expired leases", worker_id, len(jobs))
        return jobs

    async def transition(
        self,
        job_id: int,
        *,
        expected: JobStatus | Sequence[JobStatus],
        to: JobStatus,
        now: float,
        **fields: object,
    ) -> Job | None:
        """Compare-and-set the status (and the given columns: provider, provider_handle,
        result_json, attempts, error_code, error_message, error_text, credits, cost,
        run_after, status_message_id, thread_id). Returns the updated job, or ``None`` when
        the job was not in ``expected``. A terminal job never changes status again. Moving back to
        ``queued`` releases the lease; a terminal status releases it and records
        ``finished_at``; the time of every transition is recorded."""
        allowed = {JobStatus(expected)} if isinstance(expected, str) else set(expected)
        allowed -= TERMINAL_STATUSES  # a finished job never changes status again
        if not allowed:
            return None
        values = rows.column_values(fields, rows.TRANSITION_FIELDS)
        values["status"] = JobStatus(to).value
        values["updated_at"] = float(now)
        if to is JobStatus.QUEUED or to in TERMINAL_STATUSES:
            values["lease_owner"] = None
            values["lease_expires_at"] = None
        if to in TERMINAL_STATUSES:
            values["finished_at"] = float(now)
        sets = ", ".join(f"{name} = ?" for name in values)
        return await self._fetch_one(
            rows.job_from_row,
            f"UPDATE jobs SET {sets} WHERE id = ? "  # noqa: S608 - names are whitelisted
            f"AND status IN ({rows.status_list(allowed)}) RETURNING *",
            *values.values(),
            job_id,
        )

    async def update_job(self, job_id: int, *, now: float, **fields: object) -> Job | None:
        """Set non-status columns (status_message_id, thread_id, ...)."""
        values = rows.column_values(fields, rows.UPDATE_FIELDS)
        values["updated_at"] = float(now)
        sets = ", ".join(f"{name} = ?" for name in values)
        return await self._fetch_one(
            rows.job_from_row,
            f"UPDATE jobs SET {sets} WHERE id = ? RETURNING *",  # noqa: S608
            *values.values(),
            job_id,
        )

    async def get_job(self, job_id: int) -> Job | None:
        return await self._fetch_one(rows.job_from_row, "SELECT * FROM jobs WHERE id = ?", job_id)

    async def job_history(self, job_id: int) -> list[tuple[JobStatus, float]]:
        """Every status the job went through, with its time, oldest first."""
        found = await self._fetch(
            "SELECT status, at FROM job_events WHERE job_id = ? ORDER BY id", job_id
        )
        return [(JobStatus(r["status"]), float(r["at"])) for r in found]

    async def list_jobs(
        self,
        *,
        guild_id: int | None = None,
        user_id: int | None = None,
        statuses: Sequence[JobStatus] | None = None,
        limit: int = 50,
    ) -> list[Job]:
        """Newest first."""
        where: list[str] = []
        args: list[object] = []
        if guild_id is not None:
            where.append("guild_id = ?")
            args.append(guild_id)
        if user_id is not None:
            where.append("user_id = ?")
            args.append(user_id)
        if statuses is not None:
            if not statuses:
                return []
            where.append(f"status IN ({rows.status_list(statuses)})")
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        return await self._fetch_all(
            rows.job_from_row,
            f"SELECT * FROM jobs {clause} ORDER BY id DESC LIMIT ?",  # noqa: S608
            *args,
            limit,
        )

    async def queue_position(self, job_id: int) -> int | None:
        """1-based position among the queued jobs of the job's provider, in claim order
        (an estimate under fair scheduling: jobs of guilds served before it); ``None`` when
        not queued.

        Estimated by replaying the round robin: the job is the ``k``-th of its user, so
        every other user of its guild gets ``k`` turns before it (one more if served
        earlier); likewise every other guild gets as many turns as it takes this guild to
        reach the job."""
        async with self._session() as tx:
            job = await tx.fetchrow(
                "SELECT j.provider, j.guild_id, j.user_id, l.last_served AS guild_served, "
                "u.last_served AS user_served FROM jobs j "
                "JOIN queue_lanes l ON l.provider = j.provider AND l.guild_id = j.guild_id "
                "JOIN queue_user_lanes u ON u.provider = j.provider "
                "AND u.guild_id = j.guild_id AND u.user_id = j.user_id "
                "WHERE j.id = ? AND j.status = 'queued'",
                job_id,
            )
            if job is None:
                return None
            provider, guild_id, user_id = job["provider"], job["guild_id"], job["user_id"]
            ahead = await tx.fetchrow(
                "SELECT COUNT(*) AS n FROM jobs WHERE status = 'queued' AND provider = ? "
                "AND guild_id = ? AND user_id = ? AND id < ?",
                provider,
                guild_id,
                user_id,
                job_id,
            )
            users = await tx.fetch(
                "SELECT user_id, queued, last_served FROM queue_user_lanes "
                "WHERE provider = ? AND guild_id = ? AND queued > 0 AND user_id <> ?",
                provider,
                guild_id,
                user_id,
            )
            guilds = await tx.fetch(
                "SELECT guild_id, queued, last_served FROM queue_lanes "
                "WHERE provider = ? AND queued > 0 AND guild_id <> ?",
                provider,
                guild_id,
            )
        assert ahead is not None
        turn = int(ahead["n"])
        in_guild = 1 + turn
        for lane in users:
            earlier = (lane["last_served"], lane["user_id"]) < (job["user_served"], user_id)
            in_guild += min(int(lane["queued"]), turn + earlier)
        position = in_guild
        for lane in guilds:
            earlier = (lane["last_served"], lane["guild_id"]) < (job["guild_served"], guild_id)
            position += min(int(lane["queued"]), in_guild - 1 + earlier)
        return position

    async def count_active(self, *, guild_id: int, user_id: int | None = None) -> int:
        """Jobs waiting or running (non-terminal) in a guild, or for one user in it."""
        sql = f"SELECT COUNT(*) AS n FROM jobs WHERE status IN ({OPEN_SQL}) AND guild_id = ?"  # noqa: S608
        args: list[object] = [guild_id]
        if user_id is not None:
            sql += " AND user_id = ?"
            args.append(user_id)
        return await self._count(sql, *args)

    async def count_queued(self, *, guild_id: int | None = None) -> int:
        sql = "SELECT CAST(COALESCE(SUM(queued), 0) AS BIGINT) AS n FROM queue_lanes"
        if guild_id is None:
            return await self._count(sql)
        return await self._count(sql + " WHERE guild_id = ?", guild_id)

    async def count_running(self, *, guild_id: int | None = None) -> int:
        sql = "SELECT CAST(COALESCE(SUM(running), 0) AS BIGINT) AS n FROM guild_load"
        if guild_id is None:
            return await self._count(sql)
        return await self._count(sql + " WHERE guild_id = ?", guild_id)

    async def _count(self, sql: str, *args: object) -> int:
        row = await self._fetchrow(sql, *args)
        return 0 if row is None else int(row["n"])

    async def provider_backlog(self, provider: str) -> int:
        """Jobs waiting for or holding one of the provider's slots (all processes)."""
        return await self._count(
            "SELECT COUNT(*) AS n FROM jobs WHERE provider = ? "  # noqa: S608 - fixed text
            f"AND status IN ({BACKLOG_SQL})",
            provider,
        )

    async def recent_durations(self, provider: str, *, limit: int = 20) -> list[float]:
        """Seconds from started to finished of the provider's last successful jobs."""
        found = await self._fetch(
            "SELECT finished_at - started_at AS took FROM jobs "
            "WHERE status = 'done' AND provider = ? AND started_at IS NOT NULL "
            "ORDER BY finished_at DESC LIMIT ?",
            provider,
            limit,
        )
        return [float(r["took"]) for r in found]
