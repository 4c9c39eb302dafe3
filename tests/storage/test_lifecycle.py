"""Opening databases: migrations, versions, and files that are not ours."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import asyncpg
import pytest

from storage import migrate, open_repository, redact_url
from storage.base import DatabaseTooNew, DatabaseUnusable, StorageError
from storage.schema import latest_version
from storage.sqlite import SqliteRepository, split_statements
from tests import pg
from tests.storage.conftest import T0, new_job


async def _set_version(url: str, version: int) -> None:
    if url.startswith("sqlite"):
        with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
            conn.execute("INSERT INTO kontext_schema VALUES (?, 'future', 0)", (version,))
        return
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("INSERT INTO kontext_schema VALUES ($1, 'future', 0)", version)
    finally:
        await conn.close()


async def test_migrations_from_empty_and_rerun_are_idempotent(fresh_db_url: str) -> None:
    assert (
        await migrate(fresh_db_url) == latest_version("sqlite") == latest_version("postgres") >= 1
    )
    assert await migrate(fresh_db_url) == latest_version("sqlite")
    repo = open_repository(fresh_db_url)
    await repo.connect()
    try:
        job = await repo.enqueue(new_job(), now=T0)
        assert await repo.get_job(job.id) == job
        assert await repo.schema_version() == latest_version("sqlite")
    finally:
        await repo.close()


async def test_a_database_newer_than_the_code_is_refused(fresh_db_url: str) -> None:
    await migrate(fresh_db_url)
    await _set_version(fresh_db_url, 999)
    with pytest.raises(DatabaseTooNew) as raised:
        await migrate(fresh_db_url)
    message = raised.value.user_message
    assert "999" in message and "upgrade Kontext Bot" in message


async def test_random_bytes_are_refused_with_a_clear_message(tmp_path: Path) -> None:
    path = tmp_path / "kontext.db"
    path.write_bytes(b"\x00\x13garbage, not SQLite" * 500)
    with pytest.raises(DatabaseUnusable) as raised:
        await migrate(f"sqlite:///{path}")
    assert str(path) in raised.value.user_message
    assert "KONTEXT_DATABASE_URL" in raised.value.user_message


async def test_a_foreign_sqlite_database_is_refused_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE recipes (id INTEGER PRIMARY KEY, name TEXT)")
    with pytest.raises(DatabaseUnusable) as raised:
        await migrate(f"sqlite:///{path}")
    assert "recipes" in raised.value.user_message and str(path) in raised.value.user_message
    with sqlite3.connect(path) as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert tables == {"recipes"}


async def test_a_foreign_postgres_database_is_refused(pg_database: str) -> None:
    url = await pg.create_temp_database()
    try:
        conn = await asyncpg.connect(url)
        await conn.execute("CREATE TABLE jobs (id int)")
        await conn.close()
        with pytest.raises(DatabaseUnusable) as raised:
            await migrate(url)
        assert "jobs" in raised.value.user_message
    finally:
        await pg.drop_database(url)


async def test_an_unreachable_postgres_gives_a_clear_error() -> None:
    repo = open_repository("postgresql://kontext:secret@127.0.0.1:1/kontext")
    with pytest.raises(DatabaseUnusable) as raised:
        await repo.connect()
    assert "secret" not in raised.value.user_message
    assert "127.0.0.1:1" in raised.value.user_message


def test_urls_pick_the_backend(tmp_path: Path) -> None:
    relative = open_repository("sqlite:///data/kontext.db")
    assert isinstance(relative, SqliteRepository)
    assert relative.path == Path("data/kontext.db") and relative.data_dir == Path("data")
    absolute = open_repository(f"sqlite:///{tmp_path}/k.db", data_dir=tmp_path / "files")
    assert isinstance(absolute, SqliteRepository) and absolute.path == tmp_path / "k.db"
    assert absolute.data_dir == tmp_path / "files"
    for bad in ("mysql://x/y", "sqlite://relative.db", "sqlite:///"):
        with pytest.raises(StorageError):
            open_repository(bad)
    assert redact_url("postgresql://u:pw@h:5/d") == "postgresql://u:***@h:5/d"


async def test_sqlite_creates_its_folder_and_shards_blobs_there(tmp_path: Path) -> None:
    repo = open_repository(f"sqlite:///{tmp_path}/new/folder/kontext.db")
    await repo.connect()
    try:
        digest = await repo.put_blob(b"bytes", now=T0)
    finally:
        await repo.close()
    blob = tmp_path / "new" / "folder" / "blobs" / digest[:2] / digest
    assert blob.read_bytes() == b"bytes"
    assert [p.name for p in blob.parent.iterdir()] == [digest]  # no temporary files left
    journal = sqlite3.connect(tmp_path / "new" / "folder" / "kontext.db")
    assert journal.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    journal.close()


async def test_using_a_repository_before_connect_is_a_clear_error(tmp_path: Path) -> None:
    repo = open_repository(f"sqlite:///{tmp_path}/k.db")
    with pytest.raises(StorageError, match="connect"):
        await repo.get_job(1)


def test_migration_statements_split_around_trigger_bodies() -> None:
    script = (
        "CREATE TABLE t (a INT);\n-- a note; with a semicolon\n"
        "CREATE TRIGGER x AFTER INSERT ON t BEGIN\n  SELECT 1;\n  SELECT 2;\nEND;\n"
    )
    assert len(split_statements(script)) == 2
