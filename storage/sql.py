"""The repository logic both backends share, written once against a tiny query interface.

Statements use ``?`` placeholders (the PostgreSQL backend rewrites them to ``$n``) and SQL
both engines accept. Queue bookkeeping (lanes, running counts, the status history) lives in
triggers in the migrations, so every status change here is one guarded ``UPDATE``.
A backend supplies connections (:meth:`_transaction`, :meth:`_session`), blob bytes and the
claim; everything else is here.
"""

from __future__ import annotations

import abc
import logging
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from typing import Protocol

from bot.models import (
    TERMINAL_STATUSES,
    GuildSettings,
    Job,
    JobStatus,
    MessageRef,
    NewJob,
    Output,
    OutputFormat,
    Reference,
    RemixChannel,
    UsageRow,
)
from storage import rows
from storage.base import EnqueueLimits, LimitExceeded, LimitKind
from storage.rows import ACTIVE_SQL, OPEN_SQL, UNCOUNTED_SQL, Row

log = logging.getLogger(__name__)

DAY = 86_400.0
#: A blob younger than this is never purged: it may have been stored for a job that is
#: about to be queued.
BLOB_GRACE_SECONDS = DAY
#: How long the reference images of a finished job are kept (for rerolls and edits).
DEFAULT_REFERENCE_RETENTION = 30 * DAY


class Tx(Protocol):
    """The few query calls the shared logic needs; rows come back as mappings."""

    async def fetch(self, sql: str, *args: object) -> list[Row]: ...

    async def fetchrow(self, sql: str, *args: object) -> Row | None: ...

    async def execute(self, sql: str, *args: object) -> None: ...

    async def executemany(self, sql: str, args: Sequence[Sequence[object]]) -> None: ...


_JOB_INSERT = """
INSERT INTO jobs (guild_id, channel_id, thread_id, user_id, kind, prompt, params, provider,
    model, parent_output_id, reply_to_message_id, status, created_at, updated_at, deadline_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'queued', ?, ?, ?)
RETURNING *
"""
_REFERENCE_INSERT = """
INSERT INTO job_references (job_id, position, source, content_hash, url, message_id,
    attachment_id, output_id, width, height)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
"""
_LIMIT_COUNTS = f"""
SELECT
    (SELECT COUNT(*) FROM jobs WHERE guild_id = ? AND user_id = ? AND status IN ({OPEN_SQL}))
        AS user_active,
    (SELECT CAST(COALESCE(SUM(queued), 0) AS BIGINT) FROM queue_lanes WHERE guild_id = ?)
        AS guild_queue,
    (SELECT COUNT(*) FROM jobs WHERE guild_id = ? AND user_id = ? AND created_at >= ?
        AND status NOT IN ({UNCOUNTED_SQL})) AS today
"""  # noqa: S608 - composed from constants
#: Active jobs whose lease ran out, oldest first; ``{lock}`` is the backend's row lock.
_RECLAIM = f"""
UPDATE jobs SET lease_owner = ?, lease_expires_at = ?, updated_at = ?
WHERE lease_expires_at <= ? AND id IN (
    SELECT id FROM jobs WHERE lease_owner IS NOT NULL AND lease_expires_at <= ?
        AND status IN ({ACTIVE_SQL}) ORDER BY lease_expires_at LIMIT 100{{lock}})
RETURNING *
"""  # noqa: S608 - composed from constants
#: The claim's order, shared by both backends' claims and by queue_position: guild lanes
#: least recently served first, skipping guilds at their running cap and lanes whose every
#: job waits for a later ``run_after``. The runnable-job test is a scalar subquery, not
#: EXISTS, so PostgreSQL cannot turn it into a join over every queued job: the plan must walk
#: the lanes in order and stop at the first that qualifies, even without table statistics.
CANDIDATE_GUILDS = """
SELECT l.guild_id FROM queue_lanes l JOIN guild_load g ON g.guild_id = l.guild_id
WHERE l.provider = ? AND l.queued > 0 AND g.running < g.max_running
    AND (SELECT j.id FROM jobs j WHERE j.status = 'queued' AND j.provider = l.provider
        AND j.guild_id = l.guild_id AND (j.run_after IS NULL OR j.run_after <= ?)
        LIMIT 1) IS NOT NULL
ORDER BY l.last_served, l.guild_id
"""
USER_LANES = """
SELECT user_id FROM queue_user_lanes
WHERE provider = ? AND guild_id = ? AND queued > 0
ORDER BY last_served, user_id
"""
NEXT_JOB_OF_USER = """
SELECT id FROM jobs
WHERE status = 'queued' AND provider = ? AND guild_id = ? AND user_id = ?
    AND (run_after IS NULL OR run_after <= ?)
ORDER BY id LIMIT 1
"""
CLAIM_SET = """
UPDATE jobs SET status = 'submitting', lease_owner = ?, lease_expires_at = ?, started_at = ?,
    updated_at = ?
"""


class SqlRepository(abc.ABC):
    """Implements :class:`storage.base.Repository` on top of :class:`Tx`."""

    def __init__(self, *, reference_retention_seconds: float = DEFAULT_REFERENCE_RETENTION):
        self._reference_retention = reference_retention_seconds

    # --- what a backend provides ------------------------------------------------------------
    @abc.abstractmethod
    def _transaction(self) -> AbstractAsyncContextManager[Tx]:
        """A write transaction (committed on success, rolled back on error)."""

    @abc.abstractmethod
    def _session(self) -> AbstractAsyncContextManager[Tx]:
        """A connection for reads and single-statement writes (each statement atomic)."""

    @abc.abstractmethod
    async def _lock_guild_queue(self, tx: Tx, guild_id: int) -> None:
        """Serialise enqueues of one guild so two racing requests cannot both pass a limit."""

    @abc.abstractmethod
    async def put_blob(self, data: bytes, *, now: float) -> str: ...

    @abc.abstractmethod
    async def _delete_blobs(self, tx: Tx, hashes: Sequence[str]) -> None:
        """Delete the bytes of ``hashes`` (their catalogue rows are already deleted)."""

    @abc.abstractmethod
    async def claim(
        self, *, worker_id: str, provider: str, now: float, lease_seconds: float, limit: int = 1
    ) -> list[Job]: ...

    # --- guild settings and remix channels ----------------------------------------------------
    async def get_guild_settings(self, guild_id: int) -> GuildSettings:
        async with self._session() as tx:
            row = await tx.fetchrow("SELECT * FROM guild_settings WHERE guild_id = ?", guild_id)
        return GuildSettings.defaults(guild_id) if row is None else rows.settings_from_row(row)

    async def save_guild_settings(self, settings: GuildSettings, *, now: float) -> None:
        values = rows.settings_values(settings)
        values["updated_at"] = float(now)
        names = list(values)
        updates = ", ".join(f"{n} = excluded.{n}" for n in names if n != "guild_id")
        async with self._transaction() as tx:
            await tx.execute(
                f"INSERT INTO guild_settings ({', '.join(names)}) "  # noqa: S608 - names are ours
                f"VALUES ({', '.join('?' * len(names))}) "
                f"ON CONFLICT (guild_id) DO UPDATE SET {updates}",
                *values.values(),
            )
            await tx.execute(
                "INSERT INTO guild_load (guild_id, max_running) VALUES (?, ?) "
                "ON CONFLICT (guild_id) DO UPDATE SET max_running = excluded.max_running",
                settings.guild_id,
                settings.max_guild_running,
            )

    async def add_remix_channel(self, channel: RemixChannel, *, now: float) -> None:
        async with self._session() as tx:
            await tx.execute(
                "INSERT INTO remix_channels (channel_id, guild_id, style_suffix, created_at) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (channel_id) DO UPDATE SET "
                "guild_id = excluded.guild_id, style_suffix = excluded.style_suffix",
                channel.channel_id,
                channel.guild_id,
                channel.style_suffix,
                float(now),
            )

    async def remove_remix_channel(self, guild_id: int, channel_id: int) -> bool:
        async with self._session() as tx:
            removed = await tx.fetch(
                "DELETE FROM remix_channels WHERE guild_id = ? AND channel_id = ? "
                "RETURNING channel_id",
                guild_id,
                channel_id,
            )
        return bool(removed)

    async def list_remix_channels(self, guild_id: int) -> list[RemixChannel]:
        async with self._session() as tx:
            found = await tx.fetch(
                "SELECT * FROM remix_channels WHERE guild_id = ? ORDER BY channel_id", guild_id
            )
        return [rows.remix_from_row(r) for r in found]

    async def get_remix_channel(self, channel_id: int) -> RemixChannel | None:
        async with self._session() as tx:
            row = await tx.fetchrow("SELECT * FROM remix_channels WHERE channel_id = ?", channel_id)
        return None if row is None else rows.remix_from_row(row)

    # --- the queue ------------------------------------------------------------------------------
    async def enqueue(self, job: NewJob, *, now: float, limits: EnqueueLimits | None = None) -> Job:
        async with self._transaction() as tx:
            await self._lock_guild_queue(tx, job.guild_id)
            if limits is not None:
                await self._check_limits(tx, job, now, limits)
            row = await tx.fetchrow(
                _JOB_INSERT,
                job.guild_id,
                job.channel_id,
                job.thread_id,
                job.user_id,
                job.kind.value,
                job.prompt,
                job.params.model_dump_json(),
                job.provider,
                job.model,
                job.parent_output_id,
                job.reply_to_message_id,
                float(now),
                float(now),
                None if job.deadline_at is None else float(job.deadline_at),
            )
            assert row is not None
            if job.references:
                await tx.executemany(
                    _REFERENCE_INSERT,
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
        day_start = float(now) - float(now) % DAY
        counts = await tx.fetchrow(
            _LIMIT_COUNTS,
            job.guild_id,
            job.user_id,
            job.guild_id,
            job.guild_id,
            job.user_id,
            day_start,
        )
        assert counts is not None
        checks = (
            (LimitKind.USER_ACTIVE, counts["user_active"], limits.max_user_active),
            (LimitKind.GUILD_QUEUE, counts["guild_queue"], limits.max_guild_queue),
            (LimitKind.DAILY_QUOTA, counts["today"], limits.daily_quota or None),
        )
        for kind, current, maximum in checks:
            if maximum is not None and int(current) >= maximum:
                raise LimitExceeded(kind, int(current), maximum)

    async def heartbeat(
        self, *, worker_id: str, job_ids: Sequence[int], now: float, lease_seconds: float
    ) -> int:
        if not job_ids:
            return 0
        marks = ", ".join("?" * len(job_ids))
        async with self._session() as tx:
            extended = await tx.fetch(
                f"UPDATE jobs SET lease_expires_at = ? WHERE lease_owner = ? "  # noqa: S608
                f"AND status IN ({ACTIVE_SQL}) AND id IN ({marks}) RETURNING id",
                float(now + lease_seconds),
                worker_id,
                *job_ids,
            )
        return len(extended)

    _LOCK_SKIP = ""  # the row-lock clause a claim's inner SELECT takes (PostgreSQL only)

    async def reclaim_expired(
        self, *, worker_id: str, now: float, lease_seconds: float
    ) -> list[Job]:
        async with self._session() as tx:
            found = await tx.fetch(
                _RECLAIM.replace("{lock}", self._LOCK_SKIP),
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
        async with self._session() as tx:
            row = await tx.fetchrow(
                f"UPDATE jobs SET {sets} WHERE id = ? "  # noqa: S608 - names are whitelisted
                f"AND status IN ({rows.status_list(allowed)}) RETURNING *",
                *values.values(),
                job_id,
            )
        return None if row is None else rows.job_from_row(row)

    async def update_job(self, job_id: int, *, now: float, **fields: object) -> Job | None:
        values = rows.column_values(fields, rows.UPDATE_FIELDS)
        values["updated_at"] = float(now)
        sets = ", ".join(f"{name} = ?" for name in values)
        async with self._session() as tx:
            row = await tx.fetchrow(
                f"UPDATE jobs SET {sets} WHERE id = ? RETURNING *",  # noqa: S608
                *values.values(),
                job_id,
            )
        return None if row is None else rows.job_from_row(row)

    async def get_job(self, job_id: int) -> Job | None:
        async with self._session() as tx:
            row = await tx.fetchrow("SELECT * FROM jobs WHERE id = ?", job_id)
        return None if row is None else rows.job_from_row(row)

    async def job_history(self, job_id: int) -> list[tuple[JobStatus, float]]:
        async with self._session() as tx:
            found = await tx.fetch(
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
        async with self._session() as tx:
            found = await tx.fetch(
                f"SELECT * FROM jobs {clause} ORDER BY id DESC LIMIT ?",  # noqa: S608
                *args,
                limit,
            )
        return [rows.job_from_row(r) for r in found]

    async def queue_position(self, job_id: int) -> int | None:
        """Estimated by replaying the round robin: the job is the ``k``-th of its user, so
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
        async with self._session() as tx:
            row = await tx.fetchrow(sql, *args)
        return 0 if row is None else int(row["n"])

    async def recent_durations(self, provider: str, *, limit: int = 20) -> list[float]:
        async with self._session() as tx:
            found = await tx.fetch(
                "SELECT finished_at - started_at AS took FROM jobs "
                "WHERE status = 'done' AND provider = ? AND started_at IS NOT NULL "
                "ORDER BY finished_at DESC LIMIT ?",
                provider,
                limit,
            )
        return [float(r["took"]) for r in found]

    # --- references, outputs, lineage ---------------------------------------------------------
    async def get_references(self, job_id: int) -> list[Reference]:
        async with self._session() as tx:
            found = await tx.fetch(
                "SELECT * FROM job_references WHERE job_id = ? ORDER BY position", job_id
            )
        return [rows.reference_from_row(r) for r in found]

    async def add_output(
        self,
        job_id: int,
        *,
        index: int,
        data: bytes,
        format: OutputFormat,
        width: int,
        height: int,
        nsfw: bool,
        now: float,
        retention_seconds: float | None,
    ) -> Output:
        """``retention_seconds=None`` keeps the bytes until deleted by hand."""
        content_hash = await self.put_blob(data, now=now)
        expires_at = None if retention_seconds is None else float(now + retention_seconds)
        async with self._transaction() as tx:
            await tx.execute(
                "INSERT INTO outputs (job_id, image_index, content_hash, size, format, width, "
                "height, nsfw, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (job_id, image_index) DO NOTHING",
                job_id,
                index,
                content_hash,
                len(data),
                OutputFormat(format).value,
                width,
                height,
                nsfw,
                float(now),
                expires_at,
            )
            row = await tx.fetchrow(
                "SELECT * FROM outputs WHERE job_id = ? AND image_index = ?", job_id, index
            )
        assert row is not None
        return rows.output_from_row(row)

    async def get_output(self, output_id: int) -> Output | None:
        async with self._session() as tx:
            row = await tx.fetchrow("SELECT * FROM outputs WHERE id = ?", output_id)
        return None if row is None else rows.output_from_row(row)

    async def outputs_for_job(self, job_id: int) -> list[Output]:
        async with self._session() as tx:
            found = await tx.fetch(
                "SELECT * FROM outputs WHERE job_id = ? ORDER BY image_index", job_id
            )
        return [rows.output_from_row(r) for r in found]

    async def set_output_message(
        self, output_id: int, *, channel_id: int, message_id: int, attachment_id: int | None
    ) -> None:
        async with self._session() as tx:
            await tx.execute(
                "UPDATE outputs SET channel_id = ?, message_id = ?, attachment_id = ? WHERE id = ?",
                channel_id,
                message_id,
                attachment_id,
                output_id,
            )

    async def lineage(self, output_id: int) -> list[tuple[Job, Output]]:
        chain: list[tuple[Job, Output]] = []
        seen: set[int] = set()
        next_id: int | None = output_id
        while next_id is not None and next_id not in seen:
            seen.add(next_id)
            output = await self.get_output(next_id)
            job = None if output is None else await self.get_job(output.job_id)
            if output is None or job is None:
                break
            chain.append((job, output))
            next_id = job.parent_output_id
        chain.reverse()
        return chain

    async def children(self, output_id: int) -> list[Job]:
        async with self._session() as tx:
            found = await tx.fetch(
                "SELECT * FROM jobs WHERE parent_output_id = ? ORDER BY id", output_id
            )
        return [rows.job_from_row(r) for r in found]

    async def purge_expired(self, *, now: float) -> int:
        """A blob goes when no unexpired output, no unfinished job and no job finished within
        the reference retention still points at it (and it is past a grace period, since a
        reference is stored just before its job is queued). Returns how many were deleted."""
        async with self._transaction() as tx:
            found = await tx.fetch(
                "SELECT b.content_hash FROM blobs b WHERE b.created_at <= ? "
                "AND NOT EXISTS (SELECT 1 FROM outputs o WHERE o.content_hash = b.content_hash "
                "AND (o.expires_at IS NULL OR o.expires_at > ?)) "
                "AND NOT EXISTS (SELECT 1 FROM job_references r JOIN jobs j ON j.id = r.job_id "
                "WHERE r.content_hash = b.content_hash "
                "AND (j.finished_at IS NULL OR j.finished_at > ?))",
                float(now - BLOB_GRACE_SECONDS),
                float(now),
                float(now - self._reference_retention),
            )
            hashes = [r["content_hash"] for r in found]
            for start in range(0, len(hashes), 500):
                chunk = hashes[start : start + 500]
                await tx.execute(
                    f"DELETE FROM blobs WHERE content_hash IN ({', '.join('?' * len(chunk))})",  # noqa: S608
                    *chunk,
                )
            if hashes:
                await self._delete_blobs(tx, hashes)
        if hashes:
            log.info("purged %d expired blob(s)", len(hashes))
        return len(hashes)

    # --- message index ------------------------------------------------------------------------
    async def index_message(self, ref: MessageRef, *, now: float) -> None:
        async with self._session() as tx:
            await tx.execute(
                "INSERT INTO message_refs (message_id, channel_id, job_id, output_id, kind, "
                "created_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (message_id) DO UPDATE SET "
                "channel_id = excluded.channel_id, job_id = excluded.job_id, "
                "output_id = excluded.output_id, kind = excluded.kind",
                ref.message_id,
                ref.channel_id,
                ref.job_id,
                ref.output_id,
                ref.kind.value,
                float(now),
            )

    async def lookup_message(self, message_id: int) -> MessageRef | None:
        async with self._session() as tx:
            row = await tx.fetchrow("SELECT * FROM message_refs WHERE message_id = ?", message_id)
        return None if row is None else rows.message_ref_from_row(row)

    async def delete_message_ref(self, message_id: int) -> None:
        async with self._session() as tx:
            await tx.execute("DELETE FROM message_refs WHERE message_id = ?", message_id)

    # --- usage ledger -------------------------------------------------------------------------
    async def record_usage(
        self,
        *,
        guild_id: int,
        user_id: int,
        day: str,
        jobs: int = 1,
        images: int = 0,
        credits: float = 0.0,
        cost: float = 0.0,
    ) -> None:
        async with self._session() as tx:
            await tx.execute(
                "INSERT INTO usage_daily (guild_id, day, user_id, jobs, images, credits, cost) "
                "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (guild_id, day, user_id) DO UPDATE SET "
                "jobs = usage_daily.jobs + excluded.jobs, "
                "images = usage_daily.images + excluded.images, "
                "credits = usage_daily.credits + excluded.credits, "
                "cost = usage_daily.cost + excluded.cost",
                guild_id,
                day,
                user_id,
                jobs,
                images,
                float(credits),
                float(cost),
            )

    async def usage(
        self, *, guild_id: int, since_day: str, user_id: int | None = None
    ) -> list[UsageRow]:
        sql = "SELECT * FROM usage_daily WHERE guild_id = ? AND day >= ?"
        args: list[object] = [guild_id, since_day]
        if user_id is not None:
            sql += " AND user_id = ?"
            args.append(user_id)
        async with self._session() as tx:
            found = await tx.fetch(sql + " ORDER BY day, user_id", *args)
        return [rows.usage_from_row(r) for r in found]
