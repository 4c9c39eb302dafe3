"""The repository's errors and value types; the API itself is :class:`storage.sql.Repository`.

``storage.open_repository(url)`` picks the backend from ``KONTEXT_DATABASE_URL``
(``sqlite:///path`` or ``postgresql://...``). SQL lives only in this package.

Times are epoch seconds passed in by the caller (``now``), never read from the system clock
here, so tests control time. Every write that changes a job's status is a compare-and-set.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from bot.errors import KontextError
from bot.i18n import Text, t
from bot.models import (
    Frozen,
    MessageKind,
)


class StorageError(KontextError, code="storage"):
    """The database refused or failed an operation."""


class DatabaseTooNew(StorageError, code="database_too_new"):
    """The database was written by a newer version of the bot."""


class DatabaseUnusable(StorageError, code="database_unusable"):
    """Not a database of ours (corrupted, foreign or unreadable)."""


class FaultKind(StrEnum):
    FULL = "full"
    READ_ONLY = "read-only"
    LOCKED = "locked"
    GONE = "gone"


class DatabaseFault(StorageError, code="database_fault"):
    """The database stopped working under a running bot: full, read-only, locked or gone.
    The failed operation left nothing behind (its transaction was rolled back)."""

    def __init__(self, kind: FaultKind, where: str, detail: Text | str) -> None:
        if kind is FaultKind.FULL:
            message = t("errors.storage.full", where=where, detail=detail)
        elif kind is FaultKind.READ_ONLY:
            message = t("errors.storage.read_only", where=where, detail=detail)
        elif kind is FaultKind.LOCKED:
            message = t("errors.storage.locked", where=where, detail=detail)
        else:
            message = t("errors.storage.gone", where=where, detail=detail)
        super().__init__(message)
        self.kind = kind
        self.where = where


class LimitKind(StrEnum):
    USER_ACTIVE = "user_active"  # jobs waiting + running for one user in one guild
    GUILD_QUEUE = "guild_queue"  # jobs waiting in one guild
    DAILY_QUOTA = "daily_quota"  # jobs started by one user in one guild today (UTC)
    DAILY_CREDITS = "daily_credits"  # credits one guild spent today (UTC), from the ledger


class LimitExceeded(StorageError, code="limit"):
    """Enqueue refused by a limit; nothing was written. The engine words the refusal."""

    def __init__(self, limit: LimitKind, current: int, maximum: int, *, requested: int = 1):
        super().__init__(f"{limit.value} limit reached ({current}+{requested}/{maximum})")
        self.limit = limit
        self.current = current
        self.maximum = maximum
        self.requested = requested  # what the refused job counts for (a batch: its size)


class EnqueueLimits(Frozen):
    """Checked inside the enqueue transaction, so two racing requests cannot both pass."""

    max_user_active: int | None = None
    max_guild_queue: int | None = None
    daily_quota: int | None = None  # None or 0: unlimited
    max_guild_running: int | None = None  # stored on the guild's lane, used by claim


class AccountLimits(Frozen):
    """One provider account's limits, shared by every process that uses its key."""

    concurrency: int  # jobs the provider works on at once (``submitting`` + ``running``)
    rate_per_minute: float | None = None  # submits per minute; None: unlimited
    burst: int = 1  # submits the bucket holds after a quiet spell


@dataclass(frozen=True, slots=True)
class ClaimOrder:
    """What one claim asks for (see :meth:`storage.sql.Repository.claim`)."""

    worker_id: str
    provider: str
    now: float
    lease_until: float  # the claimed jobs' lease runs out then
    limit: int
    account: AccountLimits | None
    release: Sequence[int] = ()  # jobs whose account slots this claim frees first


class SignalKind(StrEnum):
    QUEUED = "queued"  # a job of ``provider`` became claimable
    FREED = "freed"  # a job of ``provider`` no longer holds an account slot
    CANCELLED = "cancelled"  # job ``job_id`` was cancelled
    RESYNC = "resync"  # signals may have been missed (the listening connection was lost)


@dataclass(frozen=True, slots=True)
class QueueSignal:
    """A change another process made, announced through the database."""

    kind: SignalKind
    provider: str | None = None
    job_id: int | None = None


class Subscription(Protocol):
    async def close(self) -> None: ...


# MessageKind is re-exported for convenience of callers building MessageRef.
__all__ = [
    "AccountLimits",
    "ClaimOrder",
    "DatabaseFault",
    "DatabaseTooNew",
    "DatabaseUnusable",
    "EnqueueLimits",
    "FaultKind",
    "LimitExceeded",
    "LimitKind",
    "MessageKind",
    "QueueSignal",
    "SignalKind",
    "StorageError",
    "Subscription",
]
