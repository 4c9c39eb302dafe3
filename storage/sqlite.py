"""The SQLite backend: one file, one connection, every statement serialised.

One aiosqlite connection runs its statements one after another in its own thread, so the
process never meets "database is locked" from itself. Most operations are one statement
(atomic on its own; the queue bookkeeping is in triggers) and are handed to that thread
back to back, so the event loop and the database thread work in parallel. A multi-statement
``BEGIN IMMEDIATE`` transaction holds ``_tx_lock`` and closes a gate: statements already
handed over finish first, and no other is handed over until it ends (it would land inside
the transaction).
WAL lets other processes (a backup, the CLI) read meanwhile, and the busy timeout covers a
second writer process for short bursts; several bot processes should use PostgreSQL. Image
bytes are files beside the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, NoReturn, cast

import aiosqlite

from bot.i18n import Text, t
from bot.models import GuildSettings, Job, NewJob
from storage import rows, schema
from storage.base import (
    AccountLimits,
    ClaimOrder,
    DatabaseUnusable,
    EnqueueLimits,
    QueueSignal,
    StorageError,
    Subscription,
)
from storage.blobfiles import BlobFiles
from storage.faults import FileIdentity, os_fault, sqlite_fault
from storage.queries import (
    CANDIDATE_GUILDS,
    CLAIM_SET,
    DEFAULT_REFERENCE_RETENTION,
    GUILD_QUEUE_COUNT,
    JOB_INSERT,
    JOB_SELECT,
    JOB_VALUES,
    TODAY_COUNT,
    USER_ACTIVE_COUNT,
    day_start,
    job_values,
    job_weight,
)
from storage.rows import Row
from storage.sql import Repository
from storage.sqlbase import Tx

log = logging.getLogger(__name__)

BUSY_TIMEOUT_MS = 10_000
_PRAGMAS = (
    "PRAGMA journal_mode = WAL",
    "PRAGMA synchronous = NORMAL",
    "PRAGMA foreign_keys = ON",
)

# One statement picks and claims the next job in the fair order (see storage.sql), so a
# single claim costs one round trip to the database thread.
_CLAIM_NEXT = f"""
{CLAIM_SET}
WHERE status = 'queued' AND id = (
    SELECT (SELECT j.id FROM jobs j WHERE j.status = 'queued' AND j.provider = u.provider
            AND j.guild_id = u.guild_id AND j.user_id = u.user_id
            AND (j.run_after IS NULL OR j.run_after <= ?) ORDER BY j.id LIMIT 1)
    FROM queue_user_lanes u
    WHERE u.provider = ? AND u.queued > 0 AND u.guild_id = ({CANDIDATE_GUILDS} LIMIT 1)
        AND EXISTS (SELECT 1 FROM jobs j WHERE j.status = 'queued' AND j.provider = u.provider
            AND j.guild_id = u.guild_id AND j.user_id = u.user_id
            AND (j.run_after IS NULL OR j.run_after <= ?))
    ORDER BY u.last_served, u.user_id LIMIT 1)
RETURNING *
"""  # noqa: S608 - composed from constants


def _dict_row(cursor: sqlite3.Cursor, values: tuple[Any, ...]) -> dict[str, Any]:
    return {column[0]: value for column, value in zip(cursor.description, values, strict=True)}


def split_statements(script: str) -> list[str]:
    """Split a migration into statements (trigger bodies contain semicolons)."""
    statements: list[str] = []
    buffer = ""
    for line in script.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            statements.append(buffer.strip())
            buffer = ""
    if buffer.strip() and not all(
        part.strip().startswith("--") or not part.strip() for part in buffer.splitlines()
    ):
        raise ValueError(f"incomplete statement at the end of a migration: {buffer[:80]!r}")
    return statements


class _Gate:
    """Lets single statements run back to back, and a transaction run alone.

    A statement passes when no transaction is open and is counted until it finishes; a
    transaction closes the gate, then waits until the statements already let through have
    finished, so none of them can land inside it whatever the driver's queueing."""

    def __init__(self) -> None:
        self._open = asyncio.Event()
        self._open.set()
        self._idle = asyncio.Event()
        self._idle.set()
        self._running = 0

    async def enter(self) -> None:
        while not self._open.is_set():
            await self._open.wait()
        self._running += 1
        self._idle.clear()

    def leave(self) -> None:
        self._running -= 1
        if not self._running:
            self._idle.set()

    async def close(self) -> None:
        self._open.clear()
        await self._idle.wait()

    def reopen(self) -> None:
        self._open.set()


class _SqliteTx:
    """Runs statements on the connection: through the gate outside a transaction, directly
    inside one (the transaction already has the connection to itself). A full, read-only,
    locked or vanished database raises :class:`DatabaseFault` naming ``where``."""

    def __init__(self, conn: aiosqlite.Connection, gate: _Gate | None, where: str) -> None:
        self._conn = conn
        self._gate = gate
        self._where = where

    async def _run(self, sql: str, args: Sequence[object]) -> list[Row]:
        try:
            return cast(list[Row], list(await self._conn.execute_fetchall(sql, args)))
        except sqlite3.Error as err:
            _reraise(err, self._where)

    async def fetch(self, sql: str, *args: object) -> list[Row]:
        if self._gate is None:
            return await self._run(sql, args)
        await self._gate.enter()
        try:
            return await self._run(sql, args)
        finally:
            self._gate.leave()

    async def fetchrow(self, sql: str, *args: object) -> Row | None:
        found = await self.fetch(sql, *args)
        return found[0] if found else None

    async def execute(self, sql: str, *args: object) -> None:
        await self.fetch(sql, *args)

    async def executemany(self, sql: str, args: Sequence[Sequence[object]]) -> None:
        if self._gate is not None:
            await self._gate.enter()
        try:
            await self._conn.executemany(sql, args)
        except sqlite3.Error as err:
            _reraise(err, self._where)
        finally:
            if self._gate is not None:
                self._gate.leave()


def _reraise(err: sqlite3.Error, where: str) -> NoReturn:
    """Raise ``err`` as a :class:`DatabaseFault` when it is one, else unchanged."""
    fault = sqlite_fault(err, where)
    if fault is None:
        raise err
    raise fault from err


class SqliteRepository(Repository):
    multi_process = False  # one bot process: its engine gate holds the provider accounts

    def __init__(
        self,
        path: Path,
        *,
        data_dir: Path | None = None,
        reference_retention_seconds: float = DEFAULT_REFERENCE_RETENTION,
        busy_timeout_ms: int = BUSY_TIMEOUT_MS,
    ) -> None:
        super().__init__(reference_retention_seconds=reference_retention_seconds)
        self.path = path
        self._busy_timeout_ms = busy_timeout_ms
        self._identity = FileIdentity(path)
        self.data_dir = data_dir if data_dir is not None else path.parent
        self._files = BlobFiles(self.data_dir / "blobs")
        self._conn: aiosqlite.Connection | None = None
        self._tx_lock = asyncio.Lock()
        self._gate = _Gate()
        # Running caps this process last wrote to guild_load, to skip rewriting them on
        # every enqueue (a repeated write would cost a round trip to the database thread).
        self._caps: dict[int, int] = {}

    # --- lifecycle ----------------------------------------------------------------------------
    async def connect(self) -> None:
        if self._conn is not None:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = await aiosqlite.connect(self.path, isolation_level=None)
        except (OSError, sqlite3.Error) as err:
            raise self._unusable(t("errors.storage.why.cannot_open", error=str(err))) from err
        conn.row_factory = cast(Any, _dict_row)
        try:
            for pragma in _PRAGMAS:
                await conn.execute(pragma)
            await conn.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout_ms)}")
            await self._migrate(conn)
            self._identity.remember()
        except BaseException as err:
            await conn.close()
            if isinstance(err, sqlite3.OperationalError):
                raise self._unusable(t("errors.storage.why.cannot_write", error=str(err))) from err
            if isinstance(err, sqlite3.DatabaseError):
                raise self._unusable(t("errors.storage.why.not_sqlite", error=str(err))) from err
            raise
        self._conn = conn
        log.info("SQLite database %s ready", self.path)

    async def close(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            async with self._tx_lock:
                await self._gate.close()
                with contextlib.suppress(sqlite3.Error):
                    await conn.execute("PRAGMA optimize")  # refresh planner statistics
                await conn.close()

    async def schema_version(self) -> int:
        row = await self._fetchrow("SELECT MAX(version) AS v FROM kontext_schema")
        return 0 if row is None or row["v"] is None else int(row["v"])

    def _unusable(self, why: Text) -> DatabaseUnusable:
        return DatabaseUnusable(t("errors.storage.sqlite_unusable", path=str(self.path), why=why))

    async def _migrate(self, conn: aiosqlite.Connection) -> None:
        """Apply pending migrations in one ``BEGIN IMMEDIATE`` transaction, reading the
        version inside it, so two processes starting together migrate once."""
        await conn.execute("BEGIN IMMEDIATE")
        try:
            found = await conn.execute_fetchall(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            )
            tables = {row["name"] for row in found}
            if schema.VERSION_TABLE in tables:
                row = next(
                    iter(
                        await conn.execute_fetchall("SELECT MAX(version) AS v FROM kontext_schema")
                    ),
                    None,
                )
                current = 0 if row is None or row["v"] is None else int(row["v"])
            elif tables:
                raise self._unusable(
                    t("errors.storage.why.foreign", tables=", ".join(sorted(tables)[:5]))
                )
            else:
                current = 0
            todo = schema.pending("sqlite", current, str(self.path))
            if todo and current == 0:
                await conn.execute(
                    "CREATE TABLE kontext_schema (version INTEGER PRIMARY KEY, "
                    "name TEXT NOT NULL, applied_at REAL NOT NULL)"
                )
            for migration in todo:
                for statement in split_statements(migration.sql):
                    await conn.execute(statement)
                await conn.execute(
                    "INSERT INTO kontext_schema (version, name, applied_at) "
                    "VALUES (?, ?, CAST(strftime('%s', 'now') AS REAL))",
                    (migration.version, migration.name),
                )
                log.info("applied SQLite migration %04d_%s", migration.version, migration.name)
        except BaseException:
            if conn.in_transaction:
                await conn.execute("ROLLBACK")
            raise
        await conn.execute("COMMIT")

    # --- connections --------------------------------------------------------------------------
    def _connection(self) -> aiosqlite.Connection:
        if self._conn is None:
            raise StorageError(t("errors.storage.not_connected"))
        return self._conn

    @asynccontextmanager
    async def _session(self) -> AsyncIterator[Tx]:
        conn = self._connection()
        self._identity.check()
        yield _SqliteTx(conn, self._gate, str(self.path))

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[Tx]:
        conn = self._connection()
        where = str(self.path)
        async with self._tx_lock:
            try:
                await self._gate.close()
                self._identity.check()
                try:
                    await conn.execute("BEGIN IMMEDIATE")
                    yield _SqliteTx(conn, None, where)
                    await conn.execute("COMMIT")
                except BaseException as err:
                    if conn.in_transaction:
                        with contextlib.suppress(sqlite3.Error):
                            await conn.execute("ROLLBACK")
                    if isinstance(err, sqlite3.Error):
                        _reraise(err, where)
                    raise
            finally:
                self._gate.reopen()

    async def _lock_guild_queue(self, tx: Tx, guild_id: int) -> None:
        """Nothing to do: every SQLite write transaction is already serialised."""

    # --- blobs --------------------------------------------------------------------------------
    async def put_blob(self, data: bytes, *, now: float) -> str:
        """The file first, then its catalogue row (a crash in between leaves only an orphan
        file, never a row without bytes). Holding a place at the gate meanwhile keeps a purge
        (a transaction) from deleting the file between the two."""
        self._identity.check()
        await self._gate.enter()
        try:
            try:
                content_hash = await asyncio.to_thread(self._files.store, data)
            except OSError as err:
                fault = os_fault(err, str(self._files.root))
                if fault is None:
                    raise
                raise fault from err
            await _SqliteTx(self._connection(), None, str(self.path)).execute(
                "INSERT INTO blobs (content_hash, size, created_at) VALUES (?, ?, ?) "
                "ON CONFLICT (content_hash) DO UPDATE SET "
                "created_at = MAX(blobs.created_at, excluded.created_at)",
                content_hash,
                len(data),
                float(now),
            )
        finally:
            self._gate.leave()
        return content_hash

    async def get_blob(self, content_hash: str) -> bytes | None:
        return await asyncio.to_thread(self._files.read, content_hash)

    async def _delete_blobs(self, tx: Tx, hashes: Sequence[str]) -> None:
        # Inside the purge's transaction, which no put_blob overlaps (see put_blob).
        await asyncio.to_thread(self._files.delete, hashes)

    # --- the queue ----------------------------------------------------------------------------
    async def enqueue(self, job: NewJob, *, now: float, limits: EnqueueLimits | None = None) -> Job:
        """Without references, one ``INSERT ... SELECT ... WHERE <limits hold>`` does the
        whole enqueue (SQLite runs a statement atomically); only a refusal costs a second
        query, to say which limit it was."""
        if job.references:
            created = await super().enqueue(job, now=now, limits=limits)
            self._caps.pop(job.guild_id, None)
            return created
        guards: list[str] = []
        args: list[object] = list(job_values(job, now))
        extra = job_weight(job) - 1  # count + weight <= maximum: count < maximum - extra
        if limits is not None and limits.max_user_active is not None:
            guards.append(f"{USER_ACTIVE_COUNT} < ?")
            args += [job.guild_id, job.user_id, limits.max_user_active - extra]
        if limits is not None and limits.max_guild_queue is not None:
            guards.append(f"{GUILD_QUEUE_COUNT} < ?")
            args += [job.guild_id, limits.max_guild_queue]
        if limits is not None and limits.daily_quota:
            guards.append(f"{TODAY_COUNT} < ?")
            args += [job.guild_id, job.user_id, day_start(now), limits.daily_quota - extra]
        source = JOB_VALUES
        if guards:
            source = f"{JOB_SELECT} WHERE {' AND '.join(guards)}"
        async with self._session() as tx:
            row = await tx.fetchrow(JOB_INSERT.format(source=source), *args)
            if row is None:
                assert limits is not None
                await self._check_limits(tx, job, now, limits)
                raise StorageError(t("errors.storage.not_queued"))  # not reached
            cap = None if limits is None else limits.max_guild_running
            if cap is not None and self._caps.get(job.guild_id) != cap:
                await tx.execute(
                    "UPDATE guild_load SET max_running = ? WHERE guild_id = ?", cap, job.guild_id
                )
                self._caps[job.guild_id] = cap
        return rows.job_from_row(row)

    async def save_guild_settings(self, settings: GuildSettings, *, now: float) -> None:
        await super().save_guild_settings(settings, now=now)
        self._caps[settings.guild_id] = settings.max_guild_running

    # --- the claim ----------------------------------------------------------------------------
    async def _claim(self, order: ClaimOrder) -> list[Job]:
        """``order.account`` and ``order.release`` are ignored: one process, the engine's gate
        holds the account and has already freed the released jobs' slots."""
        now, provider, limit = order.now, order.provider, order.limit
        args = (order.worker_id, order.lease_until, now, now, now, provider, provider, now, now)
        claimed: list[Job] = []
        if limit < 1:
            return claimed
        if limit == 1:
            row = await self._fetchrow(_CLAIM_NEXT, *args)
            return [] if row is None else [rows.job_from_row(row)]
        async with self._transaction() as tx:
            while len(claimed) < limit:
                row = await tx.fetchrow(_CLAIM_NEXT, *args)
                if row is None:
                    break
                claimed.append(rows.job_from_row(row))
        return claimed

    # --- one process: nothing to share ------------------------------------------------------
    async def account_wait(self, provider: str, *, now: float, account: AccountLimits) -> float:
        return 0.0

    async def release_account(self, job_id: int) -> None:
        """The engine's gate already freed the slot."""

    async def block_account(self, provider: str, *, until: float) -> None:
        """The engine's own bucket holds the provider off."""

    async def subscribe(self, on_signal: Callable[[QueueSignal], None]) -> Subscription | None:
        return None
