"""The SQLite backend: one file, one connection, every statement serialised.

One aiosqlite connection runs in its own thread; an ``asyncio.Lock`` around each statement or
``BEGIN IMMEDIATE`` transaction means two tasks never interleave inside a transaction and the
process never meets "database is locked" from itself. WAL lets other processes (a backup, the
CLI) read meanwhile, and the busy timeout covers a second writer process for short bursts;
several bot processes should use PostgreSQL. Image bytes are files beside the database.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, cast

import aiosqlite

from bot.models import Job
from storage import rows, schema
from storage.base import DatabaseUnusable, StorageError
from storage.blobfiles import BlobFiles, sha256_hex
from storage.rows import Row
from storage.sql import CANDIDATE_GUILDS, CLAIM_SET, DEFAULT_REFERENCE_RETENTION, SqlRepository, Tx

log = logging.getLogger(__name__)

BUSY_TIMEOUT_MS = 10_000
_PRAGMAS = (
    "PRAGMA journal_mode = WAL",
    "PRAGMA synchronous = NORMAL",
    "PRAGMA foreign_keys = ON",
    f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}",
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


class _SqliteTx:
    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn

    async def fetch(self, sql: str, *args: object) -> list[Row]:
        return cast(list[Row], list(await self._conn.execute_fetchall(sql, args)))

    async def fetchrow(self, sql: str, *args: object) -> Row | None:
        found = await self._conn.execute_fetchall(sql, args)
        return cast(Row | None, next(iter(found), None))

    async def execute(self, sql: str, *args: object) -> None:
        await self._conn.execute_fetchall(sql, args)

    async def executemany(self, sql: str, args: Sequence[Sequence[object]]) -> None:
        await self._conn.executemany(sql, args)


class SqliteRepository(SqlRepository):
    def __init__(
        self,
        path: Path,
        *,
        data_dir: Path | None = None,
        reference_retention_seconds: float = DEFAULT_REFERENCE_RETENTION,
    ) -> None:
        super().__init__(reference_retention_seconds=reference_retention_seconds)
        self.path = path
        self.data_dir = data_dir if data_dir is not None else path.parent
        self._files = BlobFiles(self.data_dir / "blobs")
        self._conn: aiosqlite.Connection | None = None
        self._lock = asyncio.Lock()

    # --- lifecycle ----------------------------------------------------------------------------
    async def connect(self) -> None:
        if self._conn is not None:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = await aiosqlite.connect(self.path, isolation_level=None)
        except (OSError, sqlite3.Error) as err:
            raise self._unusable(f"it cannot be opened ({err})") from err
        conn.row_factory = cast(Any, _dict_row)
        try:
            for pragma in _PRAGMAS:
                await conn.execute(pragma)
            await self._migrate(conn)
        except BaseException as err:
            await conn.close()
            if isinstance(err, sqlite3.DatabaseError):
                raise self._unusable(f"it is not a readable SQLite database ({err})") from err
            raise
        self._conn = conn
        log.info("SQLite database %s ready", self.path)

    async def close(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            async with self._lock:
                await conn.close()

    async def schema_version(self) -> int:
        async with self._session() as tx:
            row = await tx.fetchrow("SELECT MAX(version) AS v FROM kontext_schema")
        return 0 if row is None or row["v"] is None else int(row["v"])

    def _unusable(self, why: str) -> DatabaseUnusable:
        return DatabaseUnusable(
            f"The database file {self.path} cannot be used: {why}. If it is not Kontext Bot's "
            "database, set KONTEXT_DATABASE_URL to another file (a new one is created); if it "
            "is, restore it from a backup."
        )

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
                    f"it holds other tables ({', '.join(sorted(tables)[:5])}) and no Kontext Bot "
                    "schema version, so it belongs to something else"
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
            raise StorageError("The database is not connected; call connect() first.")
        return self._conn

    @asynccontextmanager
    async def _session(self) -> AsyncIterator[Tx]:
        conn = self._connection()
        async with self._lock:
            yield _SqliteTx(conn)

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[Tx]:
        conn = self._connection()
        async with self._lock:
            await conn.execute("BEGIN IMMEDIATE")
            try:
                yield _SqliteTx(conn)
            except BaseException:
                if conn.in_transaction:
                    await conn.execute("ROLLBACK")
                raise
            await conn.execute("COMMIT")

    async def _lock_guild_queue(self, tx: Tx, guild_id: int) -> None:
        """Nothing to do: every SQLite write transaction is already serialised."""

    # --- blobs --------------------------------------------------------------------------------
    async def put_blob(self, data: bytes, *, now: float) -> str:
        content_hash = await asyncio.to_thread(sha256_hex, data)
        # The catalogue row first, with a fresh time: a purge running meanwhile then keeps it.
        async with self._session() as tx:
            await tx.execute(
                "INSERT INTO blobs (content_hash, size, created_at) VALUES (?, ?, ?) "
                "ON CONFLICT (content_hash) DO UPDATE SET "
                "created_at = MAX(blobs.created_at, excluded.created_at)",
                content_hash,
                len(data),
                float(now),
            )
        await asyncio.to_thread(self._files.write, content_hash, data)
        return content_hash

    async def get_blob(self, content_hash: str) -> bytes | None:
        return await asyncio.to_thread(self._files.read, content_hash)

    async def _delete_blobs(self, tx: Tx, hashes: Sequence[str]) -> None:
        # Inside the transaction (and the lock), so a concurrent put_blob of the same bytes
        # cannot have its file removed after re-registering it.
        await asyncio.to_thread(self._files.delete, hashes)

    # --- the claim ----------------------------------------------------------------------------
    async def claim(
        self, *, worker_id: str, provider: str, now: float, lease_seconds: float, limit: int = 1
    ) -> list[Job]:
        args = (
            worker_id,
            float(now + lease_seconds),
            float(now),
            float(now),
            float(now),
            provider,
            provider,
            float(now),
            float(now),
        )
        claimed: list[Job] = []
        if limit < 1:
            return claimed
        if limit == 1:
            async with self._session() as tx:
                row = await tx.fetchrow(_CLAIM_NEXT, *args)
            return [] if row is None else [rows.job_from_row(row)]
        async with self._transaction() as tx:
            while len(claimed) < limit:
                row = await tx.fetchrow(_CLAIM_NEXT, *args)
                if row is None:
                    break
                claimed.append(rows.job_from_row(row))
        return claimed
