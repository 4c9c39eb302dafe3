"""What processes sharing one PostgreSQL database coordinate through: provider accounts and
notifications.

Accounts: a claim (one statement, the ``kontext_claim`` function of migration 0009) first
locks the provider's ``provider_accounts`` row (so claims of one provider take turns across
processes, which also keeps the fair order exact), frees the slots of the jobs the claiming
process says the provider has finished with, counts the provider's jobs that hold a slot
(``submitting`` or ``running``, less those the provider has already finished with:
``provider_released``) and refills the token bucket kept in that row; the job is claimed
only when both admit it, and its token is spent in the same statement.

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
RELEASE = """
WITH released AS (
    INSERT INTO provider_released (job_id, provider)
    SELECT id, provider FROM jobs WHERE id = ? AND status IN ('submitting', 'running')
    ON CONFLICT (job_id) DO NOTHING
    RETURNING provider)
SELECT pg_notify('kontext_jobs', 'freed:' || provider) FROM released
"""
FREED_SIGNAL = "SELECT pg_notify('kontext_jobs', 'freed:' || ?::text)"
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
