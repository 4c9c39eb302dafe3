"""Backups of the SQLite storage taken while jobs run, restored into fresh storage that
still serves an old output's bytes; the ``backup`` and ``restore`` commands."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from bot.cli import EXIT_OK, EXIT_USAGE, main
from bot.models import JobStatus
from bot.ops.backup import BackupError, backup_sqlite, restore_sqlite
from storage import open_repository
from tests.fakes import Outcome
from tests.jobs.conftest import edit
from tests.ops.conftest import Stack


async def test_backup_while_jobs_run_restores_an_old_output(stack: Stack, tmp_path: Path) -> None:
    old = await stack.engine.submit(edit("the old one"))
    await stack.engine.run_until_idle()
    (old_output,) = await stack.repo.outputs_for_job(old.id)
    original = await stack.repo.get_blob(old_output.content_hash)
    assert original is not None

    stack.fake.script("submit", Outcome.stall(), Outcome.stall())
    running = [await stack.engine.submit(edit(f"in flight {n}", user=200 + n)) for n in range(2)]
    await stack.until(lambda: stack.fake.submits == 3, "two submits held by the provider")
    db = tmp_path / "kontext.db"
    backup = tmp_path / "backup"
    result = await asyncio.to_thread(backup_sqlite, db, tmp_path / "blobs", backup)
    stack.fake.release()
    await stack.engine.run_until_idle()
    assert result.images >= 2 and result.dropped == 0

    restored = tmp_path / "restored"
    restore_sqlite(backup, restored / "kontext.db", restored / "blobs")
    fresh = open_repository(f"sqlite:///{restored / 'kontext.db'}")
    await fresh.connect()
    try:
        output = await fresh.get_output(old_output.id)
        assert output is not None
        assert await fresh.get_blob(output.content_hash) == original
        job = await fresh.get_job(old.id)
        assert job is not None and job.status is JobStatus.DONE
        for job_id in (j.id for j in running):  # in flight when copied: resumed on start
            copy = await fresh.get_job(job_id)
            assert copy is not None and not copy.status.terminal
    finally:
        await fresh.close()


def test_restore_never_overwrites_a_database(tmp_path: Path) -> None:
    (tmp_path / "backup").mkdir()
    with pytest.raises(BackupError, match="not a backup"):
        restore_sqlite(tmp_path / "backup", tmp_path / "db" / "kontext.db", tmp_path / "blobs")
    (tmp_path / "backup" / "kontext.db").write_bytes(b"")
    (tmp_path / "live.db").write_bytes(b"x")
    with pytest.raises(BackupError, match="Stop the bot"):
        restore_sqlite(tmp_path / "backup", tmp_path / "live.db", tmp_path / "blobs")


async def test_backup_and_restore_commands(
    stack: Stack,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    job = await stack.engine.submit(edit())
    await stack.engine.run_until_idle()
    (output,) = await stack.repo.outputs_for_job(job.id)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("KONTEXT_DATABASE_URL", "sqlite:///kontext.db")  # relative: resolved

    code = await asyncio.to_thread(main, ["backup", "copy"])
    assert code == EXIT_OK, capsys.readouterr().err
    assert await asyncio.to_thread(main, ["backup", "copy"]) == EXIT_USAGE  # not a new folder
    assert "not an empty folder" in capsys.readouterr().err

    assert await asyncio.to_thread(main, ["restore", "copy"]) == EXIT_USAGE  # the live one
    assert "Stop the bot" in capsys.readouterr().err
    monkeypatch.setenv("KONTEXT_DATABASE_URL", f"sqlite:///{tmp_path / 'new' / 'kontext.db'}")
    assert await asyncio.to_thread(main, ["restore", "copy"]) == EXIT_OK
    assert (tmp_path / "new" / "blobs" / output.content_hash[:2] / output.content_hash).is_file()

    monkeypatch.setenv("KONTEXT_DATABASE_URL", "postgresql://kontext:secret@db/kontext")
    assert await asyncio.to_thread(main, ["backup", "other"]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert "pg_dump" in err and "secret" not in err and len(err.splitlines()) == 1
