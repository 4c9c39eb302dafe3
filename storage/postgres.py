"""The PostgreSQL backend: a connection pool, for several bot processes or machines.

Each claimed job is one statement (the ``kontext_claim`` function, migration 0009): claims of
a provider take turns on its account row, a job is taken with a compare-and-set on its
status, and guild running caps are checked after the claim's trigger has counted the job
(under the guild's row lock), so two processes cannot both take a guild's last slot. Image
bytes are stored in the database (``bytea``).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import re
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, cast

import asyncpg

from bot.i18n import t
from bot.models import Job
from bot.redact import redact_url, scrub_password
from storage import pgshared, rows, schema
from storage.base import (
    AccountLimits,
    ClaimOrder,
    DatabaseFault,
    DatabaseUnusable,
    FaultKind,
    QueueSignal,
    StorageError,
    Subscription,
)
from storage.blobfiles import sha256_hex
from storage.faults import postgres_fault
from storage.queries import (
    DEFAULT_REFERENCE_RETENTION,
)
from storage.rows import Row
from storage.sql import Repository
from storage.sqlbase import Tx

log = logging.getLogger(__name__)

_MIGRATION_LOCK = 0x6B6F6E74657874  # any constant; serialises migrations across processes
_OUR_TABLES = ["guild_settings", "jobs", "job_events", "outputs", "blobs", "queue_lanes"]
_CLAIM_RETRIES = 20
_CONNECT_ERRORS = (OSError, asyncio.TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError)
#: One claim in one statement (migration 0009): the account row stays locked only while the
#: server does the claim's work, never across round trips to this process.
_CLAIM = "SELECT * FROM kontext_claim(?, ?, ?, ?, ?, ?, ?, ?::bigint[], ?)"


@functools.lru_cache(maxsize=512)
def to_dollar_params(sql: str) -> str:
    """``?`` placeholders to PostgreSQL's ``$1, $2, ...`` (our SQL has no other ``?``)."""
    counter = iter(range(1, 10_000))
    return re.sub(r"\?", lambda _: f"${next(counter)}", sql)


async def _no_reset(conn: Any) -> None:
    """Pool connections keep no session state (no SET or LISTEN; the advisory locks here are
    transaction-scoped, and asyncpg rolls back an open transaction itself), so handing one
    back needs no reset query: that saves a round trip per session."""


class _PgTx:
    def __init__(self, conn: Any) -> None:
        self._conn = conn

    async def fetch(self, sql: str, *args: object) -> list[Row]:
        return cast(list[Row], await self._conn.fetch(to_dollar_params(sql), *args))

    async def fetchrow(self, sql: str, *args: object) -> Row | None:
        return cast(Row | None, await self._conn.fetchrow(to_dollar_params(sql), *args))

    async def execute(self, sql: str, *args: object) -> None:
        await self._conn.execute(to_dollar_params(sql), *args)

    async def executemany(self, sql: str, args: Sequence[Sequence[object]]) -> None:
        await self._conn.executemany(to_dollar_params(sql), args)


class PostgresRepository(Repository):
    multi_process = True
    _LOCK_SKIP = " FOR UPDATE SKIP LOCKED"

    def __init__(
        self,
        url: str,
        *,
        min_pool: int = 1,
        max_pool: int = 10,
        reference_retention_seconds: float = DEFAULT_REFERENCE_RETENTION,
    ) -> None:
        super().__init__(reference_retention_seconds=reference_retention_seconds)
        self.url = url
        self._min_pool = min_pool
        self._max_pool = max_pool
        self._pool: Any = None

    # --- lifecycle ----------------------------------------------------------------------------
    async def connect(self) -> None:
        if self._pool is not None:
            return
        where = redact_url(self.url)
        try:
            pool = await asyncpg.create_pool(
                self.url, min_size=self._min_pool, max_size=self._max_pool, reset=_no_reset
            )
        except (*_CONNECT_ERRORS, ValueError) as err:  # ValueError: a malformed URL
            detail = scrub_password(str(err) or type(err).__name__, self.url)
            raise DatabaseUnusable(
                t("errors.storage.pg_connect", where=where, detail=detail)
            ) from err
        try:
            await self._migrate(pool, where)
        except BaseException:
            await pool.close()
            raise
        self._pool = pool
        log.info("PostgreSQL database %s ready", where)

    async def close(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()

    async def schema_version(self) -> int:
        row = await self._fetchrow("SELECT MAX(version) AS v FROM kontext_schema")
        return 0 if row is None or row["v"] is None else int(row["v"])

    async def _migrate(self, pool: Any, where: str) -> None:
        """Apply pending migrations in one transaction under an advisory lock, so several
        processes starting together migrate once."""
        async with pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", _MIGRATION_LOCK)
            if await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", schema.VERSION_TABLE):
                found = await conn.fetchval("SELECT MAX(version) FROM kontext_schema")
                current = int(found or 0)
            else:
                clash = await conn.fetch(
                    "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() "
                    "AND tablename = ANY($1::text[])",
                    _OUR_TABLES,
                )
                if clash:
                    names = ", ".join(sorted(r["tablename"] for r in clash))
                    raise DatabaseUnusable(t("errors.storage.pg_foreign", where=where, names=names))
                current = 0
            todo = schema.pending("postgres", current, where)
            if todo and current == 0:
                await conn.execute(
                    "CREATE TABLE kontext_schema (version INTEGER PRIMARY KEY, "
                    "name TEXT NOT NULL, applied_at DOUBLE PRECISION NOT NULL)"
                )
            for migration in todo:
                await conn.execute(migration.sql)
                await conn.execute(
                    "INSERT INTO kontext_schema (version, name, applied_at) "
                    "VALUES ($1, $2, extract(epoch FROM now()))",
                    migration.version,
                    migration.name,
                )
                log.info("applied PostgreSQL migration %04d_%s", migration.version, migration.name)

    # --- connections --------------------------------------------------------------------------
    def _connected_pool(self) -> Any:
        if self._pool is None:
            raise StorageError(t("errors.storage.not_connected"))
        return self._pool

    def _session(self) -> AbstractAsyncContextManager[Tx]:
        return self._connection(transaction=False)

    def _transaction(self) -> AbstractAsyncContextManager[Tx]:
        return self._connection(transaction=True)

    @asynccontextmanager
    async def _connection(self, *, transaction: bool) -> AsyncIterator[Tx]:
        async with self._faults_translated(), self._connected_pool().acquire() as conn:
            try:
                if transaction:
                    async with conn.transaction():
                        yield _PgTx(conn)
                else:
                    yield _PgTx(conn)
            except asyncpg.InterfaceError as err:
                self._raise_if_lost(conn, err)
                raise

    @asynccontextmanager
    async def _faults_translated(self) -> AsyncIterator[None]:
        """A full, read-only or unreachable server as one :class:`DatabaseFault`."""
        try:
            yield
        except Exception as err:
            fault = postgres_fault(err, redact_url(self.url))
            if fault is None:
                raise
            raise fault from err

    def _raise_if_lost(self, conn: Any, err: asyncpg.InterfaceError) -> None:
        """The pool lets go of a connection the server closed, even one still in use: the
        proxy then refuses every call. Either way the session is gone."""
        try:
            lost = bool(conn.is_closed())
        except asyncpg.InterfaceError:
            lost = True
        if lost:
            raise DatabaseFault(
                FaultKind.GONE, redact_url(self.url), t("errors.storage.fault.connection_lost")
            ) from err

    async def _lock_guild_queue(self, tx: Tx, guild_id: int) -> None:
        await tx.execute("SELECT pg_advisory_xact_lock(?)", guild_id)

    # --- blobs --------------------------------------------------------------------------------
    async def put_blob(self, data: bytes, *, now: float) -> str:
        content_hash = await asyncio.to_thread(sha256_hex, data)
        await self._execute(
            "INSERT INTO blobs (content_hash, size, created_at, data) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (content_hash) DO UPDATE SET "
            "created_at = GREATEST(blobs.created_at, excluded.created_at)",
            content_hash,
            len(data),
            float(now),
            data,
        )
        return content_hash

    async def get_blob(self, content_hash: str) -> bytes | None:
        row = await self._fetchrow("SELECT data FROM blobs WHERE content_hash = ?", content_hash)
        return None if row is None else bytes(row["data"])

    async def _delete_blobs(self, tx: Tx, hashes: Sequence[str]) -> None:
        """The bytes went with their rows."""

    # --- the claim ----------------------------------------------------------------------------
    async def _claim(self, order: ClaimOrder) -> list[Job]:
        provider, account, release = order.provider, order.account, order.release
        claimed: list[Job] = []
        releasing = [int(job_id) for job_id in release]
        if order.limit < 1:
            for job_id in releasing:
                await self.release_account(job_id)
            return claimed
        limits: tuple[int | None, float | None, int | None] = (None, None, None)
        if account is not None:
            limits = (account.concurrency, account.rate_per_minute, account.burst)
        retries = 0
        while len(claimed) < order.limit:
            # Slots released by this batch's earlier claims and not taken since.
            owed = 0 if releasing else max(0, len(release) - len(claimed))
            try:
                row = await self._fetchrow(
                    _CLAIM,
                    provider,
                    order.worker_id,
                    order.now,
                    order.lease_until,
                    *limits,
                    releasing,
                    owed,
                )
            except (asyncpg.DeadlockDetectedError, asyncpg.SerializationError):
                retries += 1
                if retries > _CLAIM_RETRIES:
                    raise
                log.debug("claim retried after a lock conflict")
                continue
            releasing = []
            if row is None:
                return claimed
            claimed.append(rows.job_from_row(row))
        if len(release) > len(claimed):
            await self._execute(pgshared.FREED_SIGNAL, provider)
        return claimed

    async def account_wait(self, provider: str, *, now: float, account: AccountLimits) -> float:
        async with self._session() as tx:
            return await pgshared.wait_seconds(tx, provider, float(now), account)

    async def release_account(self, job_id: int) -> None:
        await self._execute(pgshared.RELEASE, job_id)

    async def block_account(self, provider: str, *, until: float) -> None:
        await self._execute(pgshared.BLOCK, provider, float(until), float(until))

    async def subscribe(self, on_signal: Callable[[QueueSignal], None]) -> Subscription | None:
        self._connected_pool()
        listener = pgshared.Listener(self.url, on_signal)
        await listener.start()
        return listener
