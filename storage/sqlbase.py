"""What a backend gives the shared repository logic: a tiny query interface and connections.

Statements use ``?`` placeholders and SQL both engines accept. A backend supplies connections
(:meth:`SqlBase._transaction`, :meth:`SqlBase._session`) and blob bytes; each backend also
claims jobs its own way (:meth:`storage.sql.Repository.claim`).
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Protocol, TypeVar

from storage.queries import DEFAULT_REFERENCE_RETENTION
from storage.rows import Row

T = TypeVar("T")


class Tx(Protocol):
    """The few query calls the shared logic needs; rows come back as mappings."""

    async def fetch(self, sql: str, *args: object) -> list[Row]: ...

    async def fetchrow(self, sql: str, *args: object) -> Row | None: ...

    async def execute(self, sql: str, *args: object) -> None: ...

    async def executemany(self, sql: str, args: Sequence[Sequence[object]]) -> None: ...


class SqlBase(abc.ABC):
    """The backend-specific part of a repository."""

    def __init__(self, *, reference_retention_seconds: float = DEFAULT_REFERENCE_RETENTION):
        self._reference_retention = reference_retention_seconds

    @abc.abstractmethod
    def _transaction(self) -> AbstractAsyncContextManager[Tx]:
        """A write transaction (committed on success, rolled back on error)."""

    @abc.abstractmethod
    def _session(self) -> AbstractAsyncContextManager[Tx]:
        """A connection for reads and single-statement writes (each statement atomic)."""

    async def _fetch(self, sql: str, *args: object) -> list[Row]:
        """One statement's rows, on a session of its own."""
        async with self._session() as tx:
            return await tx.fetch(sql, *args)

    async def _fetchrow(self, sql: str, *args: object) -> Row | None:
        async with self._session() as tx:
            return await tx.fetchrow(sql, *args)

    async def _fetch_all(self, convert: Callable[[Row], T], sql: str, *args: object) -> list[T]:
        """One statement's rows, each made a model by ``convert``."""
        return [convert(r) for r in await self._fetch(sql, *args)]

    async def _fetch_one(self, convert: Callable[[Row], T], sql: str, *args: object) -> T | None:
        """One statement's row made a model by ``convert``; ``None`` when there is none."""
        row = await self._fetchrow(sql, *args)
        return None if row is None else convert(row)

    async def _changed_any(self, sql: str, *args: object) -> bool:
        """Whether a statement with ``RETURNING`` touched at least one row."""
        return bool(await self._fetch(sql, *args))

    async def _execute(self, sql: str, *args: object) -> None:
        async with self._session() as tx:
            await tx.execute(sql, *args)

    @abc.abstractmethod
    async def _lock_guild_queue(self, tx: Tx, guild_id: int) -> None:
        """Serialise enqueues of one guild so two racing requests cannot both pass a limit."""

    @abc.abstractmethod
    async def put_blob(self, data: bytes, *, now: float) -> str:
        """Store bytes (idempotent) and return their sha256 hex (content-addressed)."""

    @abc.abstractmethod
    async def _delete_blobs(self, tx: Tx, hashes: Sequence[str]) -> None:
        """Delete the bytes of ``hashes`` (their catalogue rows are already deleted)."""
