"""A database that breaks under a running bot: full, read-only, locked, gone.

Every case must end in one :class:`DatabaseFault` naming the database (never a raw driver
error) and leave nothing half-written.

How each fault is made real:

* full: a 1 MiB tmpfs filled to the last byte (needs root to mount; the bot's container runs
  tests as root), and, everywhere, SQLite's ``PRAGMA max_page_count`` capped at the current
  size, which makes SQLite itself answer SQLITE_FULL on the next page it needs;
* read-only: ``PRAGMA query_only`` on the live connection. ``chmod`` does not stop root, and a
  read-only remount is refused while the file is open for writing; query_only makes SQLite
  refuse writes with the same SQLITE_READONLY a read-only file gives. PostgreSQL: the
  session's ``default_transaction_read_only`` (what a hot standby enforces);
* locked: a second connection holding an exclusive lock past the busy timeout;
* gone: the file deleted, or replaced by another, under the open connection; PostgreSQL: the
  server ends the session (``pg_terminate_backend``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest

from bot.models import NewReference, ReferenceSource
from storage import DatabaseFault
from storage.base import FaultKind
from storage.faults import postgres_fault, sqlite_fault
from storage.postgres import PostgresRepository
from storage.sqlite import SqliteRepository
from tests import pg
from tests.storage.conftest import T0, new_job


@pytest.fixture
async def sqlite_repo(tmp_path: Path) -> AsyncIterator[SqliteRepository]:
    repository = SqliteRepository(tmp_path / "kontext.db", busy_timeout_ms=50)
    await repository.connect()
    try:
        yield repository
    finally:
        await repository.close()


async def _pragma(repo: SqliteRepository, statement: str) -> int | None:
    async with repo._session() as tx:
        row = await tx.fetchrow(statement)
    return None if row is None else int(next(iter(row.values())))


async def _fill_until_full(repo: SqliteRepository) -> DatabaseFault:
    for _ in range(10_000):
        try:
            await repo.enqueue(new_job(prompt="x" * 3000), now=T0)
        except DatabaseFault as fault:
            return fault
    pytest.fail("the database never filled up")


def _with_reference(content_hash: str) -> object:
    ref = NewReference(source=ReferenceSource.UPLOAD, content_hash=content_hash)
    return new_job(references=(ref, ref))


# --------------------------------------------------------------------------- full


async def test_a_full_sqlite_database_is_one_clear_error_and_keeps_nothing(
    sqlite_repo: SqliteRepository,
) -> None:
    pages = await _pragma(sqlite_repo, "PRAGMA page_count")
    await _pragma(sqlite_repo, f"PRAGMA max_page_count = {pages}")
    fault = await _fill_until_full(sqlite_repo)
    assert fault.kind is FaultKind.FULL
    assert str(fault).startswith(f"The database at {sqlite_repo.path} is full: ")
    kept = await sqlite_repo.list_jobs(limit=100_000)
    # A multi-statement enqueue (a job and its references) rolls back as a whole.
    content_hash = await _put_small_blob(sqlite_repo)
    with pytest.raises(DatabaseFault):
        for _ in range(1000):
            await sqlite_repo.enqueue(_with_reference(content_hash), now=T0)  # type: ignore[arg-type]
    await _pragma(sqlite_repo, "PRAGMA max_page_count = 1073741823")
    after = await sqlite_repo.list_jobs(limit=100_000)
    for job in after[: len(after) - len(kept)]:
        assert len(await sqlite_repo.get_references(job.id)) == 2, "half a job was kept"
    await sqlite_repo.enqueue(new_job(), now=T0)  # space again: work goes on


async def _put_small_blob(repo: SqliteRepository) -> str:
    return await repo.put_blob(b"reference bytes", now=T0)


@contextlib.contextmanager
def _tiny_tmpfs(where: Path) -> Iterator[Path]:
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs to fill for real needs root")
    where.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(where)],
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def _fill(disk: Path) -> Path:
    filler = disk / "filler"
    with filler.open("wb", buffering=0) as handle, contextlib.suppress(OSError):
        while True:
            handle.write(b"\0" * 4096)
    return filler


async def test_a_real_full_disk_is_one_clear_error(tmp_path: Path) -> None:
    with _tiny_tmpfs(tmp_path / "disk") as disk:
        repo = SqliteRepository(disk / "kontext.db")
        await repo.connect()
        try:
            await repo.enqueue(new_job(), now=T0)
            filler = _fill(disk)
            fault = await _fill_until_full(repo)
            assert fault.kind is FaultKind.FULL and str(disk / "kontext.db") in str(fault)
            with pytest.raises(DatabaseFault) as blob_fault:
                await repo.put_blob(os.urandom(64 * 1024), now=T0)
            assert blob_fault.value.kind is FaultKind.FULL
            filler.unlink()
            await repo.enqueue(new_job(), now=T0)
            assert len(await repo.list_jobs()) == 2
        finally:
            await repo.close()


# --------------------------------------------------------------------------- read-only


async def test_a_read_only_sqlite_database_is_one_clear_error(
    sqlite_repo: SqliteRepository,
) -> None:
    await sqlite_repo.enqueue(new_job(), now=T0)
    await _pragma(sqlite_repo, "PRAGMA query_only = ON")
    with pytest.raises(DatabaseFault) as caught:
        await sqlite_repo.enqueue(new_job(), now=T0)
    assert caught.value.kind is FaultKind.READ_ONLY
    assert str(caught.value).startswith(f"The database at {sqlite_repo.path} is read-only: ")
    content_hash = await _put_small_blob_or_fault(sqlite_repo)
    assert content_hash is None
    assert len(await sqlite_repo.list_jobs()) == 1  # reads still work


async def _put_small_blob_or_fault(repo: SqliteRepository) -> str | None:
    try:
        return await _put_small_blob(repo)
    except DatabaseFault as fault:
        assert fault.kind is FaultKind.READ_ONLY
        return None


# --------------------------------------------------------------------------- locked


async def test_a_database_locked_by_another_process_is_one_clear_error(
    sqlite_repo: SqliteRepository,
) -> None:
    other = sqlite3.connect(sqlite_repo.path, isolation_level=None)
    try:
        other.execute("BEGIN EXCLUSIVE")
        with pytest.raises(DatabaseFault) as caught:
            await sqlite_repo.enqueue(_with_reference("0" * 64), now=T0)  # type: ignore[arg-type]
        assert caught.value.kind is FaultKind.LOCKED
        assert "is locked: " in str(caught.value)
        other.execute("ROLLBACK")
    finally:
        other.close()
    assert await sqlite_repo.list_jobs() == []


# --------------------------------------------------------------------------- gone


def _remove_database_files(path: Path, *, replace: bool) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    if replace:
        sqlite3.connect(path).close()


@pytest.mark.parametrize("how", ["deleted", "replaced"])
async def test_a_vanished_sqlite_file_stops_the_work_with_one_log_line(
    how: str, sqlite_repo: SqliteRepository, caplog: pytest.LogCaptureFixture
) -> None:
    await sqlite_repo.enqueue(new_job(), now=T0)
    path = sqlite_repo.path
    _remove_database_files(path, replace=how == "replaced")
    caplog.set_level(logging.ERROR, logger="storage.faults")
    for _ in range(3):
        with pytest.raises(DatabaseFault) as caught:
            await sqlite_repo.enqueue(new_job(), now=T0)
        assert caught.value.kind is FaultKind.GONE
        assert str(caught.value).startswith(f"The database at {path} is gone: the file was {how}")
    with pytest.raises(DatabaseFault):
        await sqlite_repo.get_job(1)
    lines = [r.getMessage() for r in caplog.records if r.name == "storage.faults"]
    assert len(lines) == 1 and "no more work is taken" in lines[0]
    if how == "replaced":  # nothing was written into the new file either
        with contextlib.closing(sqlite3.connect(path)) as conn:
            assert conn.execute("SELECT name FROM sqlite_master").fetchall() == []


# --------------------------------------------------------------------------- PostgreSQL


@pytest.fixture
async def pg_repo(pg_database: str) -> AsyncIterator[PostgresRepository]:
    await pg.reset_database(pg_database)
    repository = PostgresRepository(pg_database, min_pool=1, max_pool=1)
    await repository.connect()
    try:
        yield repository
    finally:
        await repository.close()


async def test_a_read_only_postgres_database_is_one_clear_error(pg_database: str) -> None:
    await pg.reset_database(pg_database)
    name = pg.database_name(pg_database)
    migrated = PostgresRepository(pg_database, min_pool=1, max_pool=1)
    await migrated.connect()  # the schema exists before the database turns read-only
    await migrated.close()
    admin = await asyncpg.connect(pg.admin_url())
    try:
        await admin.execute(f'ALTER DATABASE "{name}" SET default_transaction_read_only = on')
        repo = PostgresRepository(pg_database, min_pool=1, max_pool=1)
        await repo.connect()
        try:
            with pytest.raises(DatabaseFault) as caught:
                await repo.enqueue(new_job(), now=T0)
            assert caught.value.kind is FaultKind.READ_ONLY
            assert "is read-only: " in str(caught.value)
            assert await repo.list_jobs() == []
        finally:
            await repo.close()
    finally:
        await admin.execute(f'ALTER DATABASE "{name}" RESET default_transaction_read_only')
        await admin.close()


async def test_a_lost_postgres_connection_is_one_clear_error(
    pg_repo: PostgresRepository,
) -> None:
    """The server ends the session in the middle of a transaction (a restart, a failover)."""
    with pytest.raises(DatabaseFault) as caught:
        async with pg_repo._transaction() as tx:
            await tx.execute(
                "INSERT INTO remix_channels (channel_id, guild_id, created_at) VALUES (?, ?, ?)",
                77,
                7,
                T0,
            )
            row = await tx.fetchrow("SELECT pg_backend_pid() AS pid")
            assert row is not None
            await _terminate(row["pid"])
            await tx.execute("SELECT 1")
    assert caught.value.kind is FaultKind.GONE
    assert "postgresql://" in str(caught.value) and "is gone: " in str(caught.value)
    # The pool replaces the lost connection; the half-done transaction left nothing.
    assert await pg_repo.get_remix_channel(77) is None


async def _terminate(pid: int) -> None:
    admin = await asyncpg.connect(pg.admin_url())
    try:
        await admin.execute("SELECT pg_terminate_backend($1)", pid)
        gone = "SELECT count(*) FROM pg_stat_activity WHERE pid = $1"
        while await admin.fetchval(gone, pid):
            pass  # until the server has ended that session
    finally:
        await admin.close()


# --------------------------------------------------------------------------- the mapping


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (asyncpg.DiskFullError("could not extend file: No space left on device"), FaultKind.FULL),
        (asyncpg.ReadOnlySQLTransactionError("read-only transaction"), FaultKind.READ_ONLY),
        (asyncpg.AdminShutdownError("terminating connection"), FaultKind.GONE),
        (asyncpg.ConnectionDoesNotExistError("connection was closed"), FaultKind.GONE),
        (ConnectionRefusedError(111, "Connection refused"), FaultKind.GONE),
        (asyncpg.UniqueViolationError("duplicate key"), None),
    ],
)
def test_postgres_errors_map_to_one_fault(error: BaseException, kind: FaultKind | None) -> None:
    fault = postgres_fault(error, "postgresql://kontext:***@db/kontext")
    assert (fault.kind if fault else None) is kind
    if fault is not None:
        assert str(fault).startswith(
            f"The database at postgresql://kontext:***@db/kontext is {kind}"
        )


def test_only_sqlite_faults_are_translated() -> None:
    syntax = sqlite3.OperationalError("near 'SELEC': syntax error")
    syntax.sqlite_errorcode = 1  # type: ignore[attr-defined]
    assert sqlite_fault(syntax, "x.db") is None
    moved = sqlite3.OperationalError("attempt to write a readonly database")
    moved.sqlite_errorcode = 1032  # type: ignore[attr-defined]  # SQLITE_READONLY_DBMOVED
    fault = sqlite_fault(moved, "x.db")
    assert fault is not None and fault.kind is FaultKind.GONE
