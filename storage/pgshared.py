"""What processes sharing one PostgreSQL database coordinate through: provider accounts and
notifications.

Accounts: a claim's transaction first locks the provider's ``provider_accounts`` row (so
claims of one provider take turns across processes, which also keeps the fair order exact),
counts the provider's jobs that hold a slot (``submitting`` or ``running``, less those the
provider has already finished with: ``provider_released``) and refills the token bucket kept
in that row; the job is claimed only when both admit it, and its token is
spent in the same transaction.

Notifications: triggers ``NOTIFY kontext_jobs`` with ``queued:<provider>``,
``freed:<provider>`` or ``cancelled:<job id>`` at commit. A :class:`Listener` holds its own
connection (asyncpg's ``add_listener``); when that connection is lost it reconnects and
reports ``RESYNC``, because signals sent meanwhile were missed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Callable
from typing import Any

import asyncpg

from storage.base import AccountLimits, QueueSignal, SignalKind
from storage.rows import Row
from storage.sqlbase import Tx

log = logging.getLogger(__name__)

CHANNEL = "kontext_jobs"
_EPSILON = 1e-9
_ROW = "SELECT tokens, stamp, blocked_until FROM provider_accounts WHERE provider = ?"
_INSERT = (
    "INSERT INTO provider_accounts (provider, tokens, stamp) VALUES (?, ?, ?) "
    "ON CONFLICT (provider) DO NOTHING"
)
#: The provider's jobs that hold an account slot (the argument: the provider).
BUSY_COUNT = (
    "(SELECT COUNT(*) FROM jobs j WHERE j.provider = ? "
    "AND j.status IN ('submitting', 'running') "
    "AND NOT EXISTS (SELECT 1 FROM provider_released r WHERE r.job_id = j.id))"
)
_ROW_AND_BUSY = (
    f"SELECT tokens, stamp, blocked_until, {BUSY_COUNT} AS busy "  # noqa: S608 - constants
    "FROM provider_accounts WHERE provider = ?"
)
RELEASE = """
WITH released AS (
    INSERT INTO provider_released (job_id, provider)
    SELECT id, provider FROM jobs WHERE id = ? AND status IN ('submitting', 'running')
    ON CONFLICT (job_id) DO NOTHING
    RETURNING provider)
SELECT pg_notify('kontext_jobs', 'freed:' || provider) FROM released
"""
#: Frees the slots of ``jobs`` inside a claim's transaction, which may take them again at
#: once: the claim announces only the slots it leaves free (FREED_SIGNAL).
RELEASE_QUIETLY = """
INSERT INTO provider_released (job_id, provider)
SELECT id, provider FROM jobs WHERE id = ANY(?::bigint[]) AND status IN ('submitting', 'running')
ON CONFLICT (job_id) DO NOTHING
RETURNING job_id
"""
FREED_SIGNAL = "SELECT pg_notify('kontext_jobs', 'freed:' || ?::text)"
_SPEND = "UPDATE provider_accounts SET tokens = ?, stamp = GREATEST(stamp, ?) WHERE provider = ?"
BLOCK = (
    "INSERT INTO provider_accounts (provider, tokens, stamp, blocked_until) VALUES (?, 0, ?, ?) "
    "ON CONFLICT (provider) DO UPDATE "
    "SET blocked_until = GREATEST(provider_accounts.blocked_until, excluded.blocked_until)"
)
_RECONNECT_DELAYS = (0.5, 1.0, 2.0, 5.0, 10.0)


def _tokens(row: Row, now: float, account: AccountLimits) -> float:
    """The bucket's tokens at ``now`` (a clock behind the row's stamp adds nothing)."""
    if account.rate_per_minute is None:
        return math.inf
    elapsed = max(0.0, now - float(row["stamp"]))
    refilled = float(row["tokens"]) + elapsed * account.rate_per_minute / 60.0
    return min(float(account.burst), refilled)


async def lock(tx: Tx, provider: str, now: float, account: AccountLimits) -> Row:
    """Lock the provider's account row (created on first use). Claims of one provider then
    commit one at a time across processes."""
    row = await tx.fetchrow(_ROW + " FOR UPDATE", provider)
    if row is None:
        await tx.execute(_INSERT, provider, float(account.burst), now)
        row = await tx.fetchrow(_ROW + " FOR UPDATE", provider)
    assert row is not None
    return row


async def release(tx: Tx, job_ids: list[int]) -> int:
    """Free the account slots of ``job_ids`` in this transaction; how many it freed."""
    if not job_ids:
        return 0
    return len(await tx.fetch(RELEASE_QUIETLY, job_ids))


def admits(row: Row, now: float, account: AccountLimits) -> float | None:
    """The bucket's tokens if the rate admits a job now (the account row as locked), else
    ``None``. The busy slots are counted by the claim's next statement: its snapshot is taken
    after the lock was granted, so each claim sees every claim before it and guilds take
    their turns exactly."""
    if now < float(row["blocked_until"]):
        return None
    tokens = _tokens(row, now, account)
    if tokens < 1.0 - _EPSILON:
        return None
    return tokens


async def looks_full(tx: Tx, provider: str, now: float, account: AccountLimits) -> bool:
    """Whether the account admits no job now, read without locking anything: a claim that
    would find it so skips the account lock, which claims of every process take in turn.
    Only a hint (another process may free a slot meanwhile); the claim decides under the lock."""
    row = await tx.fetchrow(_ROW_AND_BUSY, provider, provider)
    if row is None:
        return False
    return int(row["busy"]) >= account.concurrency or admits(row, now, account) is None


async def spend(tx: Tx, provider: str, now: float, tokens: float, account: AccountLimits) -> None:
    if account.rate_per_minute is not None:
        await tx.execute(_SPEND, tokens - 1.0, now, provider)


async def wait_seconds(tx: Tx, provider: str, now: float, account: AccountLimits) -> float:
    row = await tx.fetchrow(_ROW, provider)
    if row is None:
        return 0.0
    blocked = float(row["blocked_until"]) - now
    tokens = _tokens(row, now, account)
    rate = account.rate_per_minute
    refill = 0.0 if rate is None else (1.0 - tokens) * 60.0 / rate
    return max(0.0, blocked, refill)


def parse(payload: str) -> QueueSignal | None:
    kind, _, value = payload.partition(":")
    if kind == SignalKind.CANCELLED and value.isdigit():
        return QueueSignal(SignalKind.CANCELLED, job_id=int(value))
    if kind in (SignalKind.QUEUED, SignalKind.FREED) and value:
        return QueueSignal(SignalKind(kind), provider=value)
    return None


class Listener:
    """``LISTEN kontext_jobs`` on a connection of its own, reconnecting when it is lost."""

    def __init__(self, url: str, on_signal: Callable[[QueueSignal], None]) -> None:
        self._url = url
        self._on_signal = on_signal
        self._conn: Any = None
        self._closed = False
        self._reconnecting: asyncio.Task[None] | None = None

    async def start(self) -> None:
        conn = await asyncpg.connect(self._url)
        await conn.add_listener(CHANNEL, self._notified)
        conn.add_termination_listener(self._lost)
        self._conn = conn

    def server_pid(self) -> int:
        """The server process of the listening connection (0 while reconnecting)."""
        return 0 if self._conn is None else int(self._conn.get_server_pid())

    def _notified(self, conn: object, pid: int, channel: str, payload: str) -> None:
        signal = parse(payload)
        if signal is not None:
            self._tell(signal)

    def _tell(self, signal: QueueSignal) -> None:
        try:
            self._on_signal(signal)
        except Exception:
            log.exception("handling %s failed", signal)

    def _lost(self, conn: object) -> None:
        if not self._closed and self._reconnecting is None:
            log.warning("lost the database notification connection; reconnecting")
            self._reconnecting = asyncio.get_running_loop().create_task(self._reconnect())

    async def _reconnect(self) -> None:
        attempt = 0
        while not self._closed:
            await asyncio.sleep(_RECONNECT_DELAYS[min(attempt, len(_RECONNECT_DELAYS) - 1)])
            attempt += 1
            try:
                await self.start()
            except (TimeoutError, OSError, asyncpg.PostgresError) as err:
                log.warning("notification connection: reconnect %d failed: %s", attempt, err)
                continue
            log.info("notification connection restored")
            self._reconnecting = None
            self._tell(QueueSignal(SignalKind.RESYNC))
            return

    async def close(self) -> None:
        self._closed = True
        if self._reconnecting is not None:
            self._reconnecting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reconnecting
        if self._conn is not None:
            conn, self._conn = self._conn, None
            with contextlib.suppress(Exception):
                await conn.close(timeout=5)
