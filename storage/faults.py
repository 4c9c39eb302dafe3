"""A database that breaks under a running bot: one clear error instead of a driver exception.

Disk full, a read-only database, a lock held too long and a database that is gone (deleted,
replaced, disconnected) all become :class:`~storage.base.DatabaseFault` naming the database
and what to do. The backends translate at their connection boundary, after rolling back, so
nothing of the failed operation is kept. Other driver errors (a broken query is a bug) pass
through unchanged.

A SQLite file deleted or replaced while the bot runs would otherwise go on taking writes into
an unlinked inode that vanishes at exit; :class:`FileIdentity` notices (the file's device and
inode number are compared before every statement and transaction) and refuses from then on.
"""

from __future__ import annotations

import errno
import logging
import sqlite3
from pathlib import Path
from typing import Final

import asyncpg

from bot.i18n import t
from storage.base import DatabaseFault, FaultKind

log = logging.getLogger(__name__)

# SQLite result codes (the low byte of an extended code), from sqlite3.h.
_SQLITE_BUSY: Final = 5
_SQLITE_LOCKED: Final = 6
_SQLITE_READONLY: Final = 8
_SQLITE_IOERR: Final = 10
_SQLITE_CORRUPT: Final = 11
_SQLITE_FULL: Final = 13
_SQLITE_CANTOPEN: Final = 14
_SQLITE_NOTADB: Final = 26
_SQLITE_READONLY_DBMOVED: Final = _SQLITE_READONLY | (4 << 8)  # the file was unlinked

_SQLITE_KINDS: Final = {
    _SQLITE_FULL: FaultKind.FULL,
    _SQLITE_READONLY: FaultKind.READ_ONLY,
    _SQLITE_BUSY: FaultKind.LOCKED,
    _SQLITE_LOCKED: FaultKind.LOCKED,
    _SQLITE_IOERR: FaultKind.GONE,
    _SQLITE_CORRUPT: FaultKind.GONE,
    _SQLITE_CANTOPEN: FaultKind.GONE,
    _SQLITE_NOTADB: FaultKind.GONE,
}
_OS_KINDS: Final = {
    errno.ENOSPC: FaultKind.FULL,
    errno.EDQUOT: FaultKind.FULL,
    errno.EROFS: FaultKind.READ_ONLY,
    errno.EACCES: FaultKind.READ_ONLY,
    errno.EPERM: FaultKind.READ_ONLY,
    errno.ENOENT: FaultKind.GONE,
    errno.EIO: FaultKind.GONE,
}


def sqlite_fault(err: sqlite3.Error, where: str) -> DatabaseFault | None:
    """The fault ``err`` reports, or ``None`` when it is not one (e.g. an SQL error)."""
    code = getattr(err, "sqlite_errorcode", None)
    if not isinstance(code, int):
        return None
    if code == _SQLITE_READONLY_DBMOVED:
        return DatabaseFault(FaultKind.GONE, where, t("errors.storage.fault.moved"))
    kind = _SQLITE_KINDS.get(code & 0xFF)
    return None if kind is None else DatabaseFault(kind, where, str(err))


def os_fault(err: OSError, where: str) -> DatabaseFault | None:
    """The fault a file operation beside the database (image bytes) ran into, if any."""
    kind = _OS_KINDS.get(err.errno or 0)
    return None if kind is None else DatabaseFault(kind, where, err.strerror or str(err))


# asyncpg raises these when the server or the connection goes away mid-operation.
_PG_GONE: Final = (
    asyncpg.ConnectionDoesNotExistError,
    asyncpg.AdminShutdownError,
    asyncpg.CannotConnectNowError,
    asyncpg.CrashShutdownError,
    asyncpg.ConnectionFailureError,
    asyncpg.PostgresConnectionError,
    ConnectionError,
    OSError,
)


def postgres_fault(err: BaseException, where: str) -> DatabaseFault | None:
    """The fault a PostgreSQL error reports, or ``None`` when it is not one."""
    if isinstance(err, asyncpg.DiskFullError | asyncpg.InsufficientResourcesError):
        return DatabaseFault(FaultKind.FULL, where, str(err))
    if isinstance(err, asyncpg.ReadOnlySQLTransactionError):
        return DatabaseFault(FaultKind.READ_ONLY, where, str(err))
    if isinstance(err, asyncpg.LockNotAvailableError):
        return DatabaseFault(FaultKind.LOCKED, where, str(err))
    if isinstance(err, _PG_GONE):
        return DatabaseFault(FaultKind.GONE, where, str(err) or type(err).__name__)
    return None


class FileIdentity:
    """Remembers which file a SQLite connection opened, and notices when it is no longer the
    file at that path (deleted, or replaced by another)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._identity: tuple[int, int] | None = None
        self._lost: DatabaseFault | None = None

    def remember(self) -> None:
        info = self.path.stat()
        self._identity = (info.st_dev, info.st_ino)
        self._lost = None

    def check(self) -> None:
        """Raise (and, the first time, log) if the file was deleted or replaced."""
        if self._lost is not None:
            raise self._lost
        if self._identity is None:
            return
        try:
            info = self.path.stat()
        except FileNotFoundError:
            what = t("errors.storage.fault.deleted")
        except OSError as err:
            what = t("errors.storage.fault.unchecked", error=str(err.strerror))
        else:
            if (info.st_dev, info.st_ino) == self._identity:
                return
            what = t("errors.storage.fault.replaced")
        self._lost = DatabaseFault(FaultKind.GONE, str(self.path), what)
        log.error(
            "the SQLite database %s is gone (%s): no more work is taken; restore the file "
            "and restart the bot",
            self.path,
            str(what),
        )
        raise self._lost
