"""Backups of the embedded storage (SQLite database plus the image files beside it).

:func:`backup_sqlite` works while the bot runs: SQLite's online backup API copies a
consistent snapshot of the database (in WAL mode writers carry on meanwhile), then the image
files the snapshot lists are copied. Image files never change once written (they are named by
their content hash), so copying them after the snapshot is safe; one deleted by retention in
between was expired anyway, and its row is dropped from the copy. :func:`restore_sqlite`
puts a backup in place of a database that does not exist yet (stop the bot first).

PostgreSQL keeps the image bytes in the database: ``pg_dump`` backs up everything.
These functions block; callers run them in a thread (or from the command line).
"""

from __future__ import annotations

import contextlib
import shutil
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from bot.errors import KontextError
from bot.i18n import t
from storage.blobfiles import BlobFiles

DB_NAME = "kontext.db"
BLOBS = "blobs"


class BackupError(KontextError, code="backup"):
    """A backup or a restore cannot be made; nothing was changed."""


@dataclass(frozen=True)
class BackupResult:
    database: Path
    images: int  # image files copied
    dropped: int  # rows whose file had been deleted after the snapshot


def backup_sqlite(db_path: Path, blob_root: Path, target: Path) -> BackupResult:
    """Copy the database at ``db_path`` and its image files under ``blob_root`` into the new
    folder ``target`` (``target/kontext.db``, ``target/blobs/``)."""
    if not db_path.is_file():
        raise BackupError(t("errors.ops.no_database", path=str(db_path)))
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise BackupError(t("errors.ops.target_exists", path=str(target)))
    target.mkdir(parents=True, exist_ok=True)
    copy = target / DB_NAME
    try:
        source = sqlite3.connect(db_path, timeout=30)
        try:
            dest = sqlite3.connect(copy)
            try:
                source.backup(dest)  # one step: a consistent snapshot
                hashes = [row[0] for row in dest.execute("SELECT content_hash FROM blobs")]
                images, missing = _copy_files(
                    BlobFiles(blob_root), BlobFiles(target / BLOBS), hashes
                )
                if missing:
                    dest.executemany(
                        "DELETE FROM blobs WHERE content_hash = ?", [(h,) for h in missing]
                    )
                    dest.commit()
                dest.execute("PRAGMA journal_mode = DELETE")  # one self-contained file
            finally:
                dest.close()
        finally:
            source.close()
    except sqlite3.Error as err:
        raise BackupError(t("errors.ops.backup_failed", path=str(db_path), error=str(err))) from err
    return BackupResult(database=copy, images=images, dropped=len(missing))


def _copy_files(source: BlobFiles, dest: BlobFiles, hashes: list[str]) -> tuple[int, list[str]]:
    copied = 0
    missing: list[str] = []
    for content_hash in hashes:
        origin, target = source.path(content_hash), dest.path(content_hash)
        if origin is None or target is None:
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            shutil.copyfile(origin, target)
        except FileNotFoundError:
            missing.append(content_hash)
            continue
        copied += 1
    return copied, missing


def restore_sqlite(backup: Path, db_path: Path, blob_root: Path) -> BackupResult:
    """Put the backup folder ``backup`` in place as the database ``db_path`` (which must not
    exist) and its image files under ``blob_root``."""
    source_db = backup / DB_NAME
    if not source_db.is_file():
        raise BackupError(t("errors.ops.not_a_backup", path=str(backup), name=DB_NAME))
    for path in (db_path, db_path.with_name(db_path.name + "-wal")):
        if path.exists():
            raise BackupError(t("errors.ops.restore_over", path=str(path)))
    try:
        source = sqlite3.connect(f"file:{source_db}?mode=ro", uri=True)
        try:
            source.execute("SELECT MAX(version) FROM kontext_schema").fetchone()
            hashes = [row[0] for row in source.execute("SELECT content_hash FROM blobs")]
            db_path.parent.mkdir(parents=True, exist_ok=True)
            dest = sqlite3.connect(db_path)
            try:
                source.backup(dest)
            finally:
                dest.close()
        finally:
            source.close()
    except sqlite3.Error as err:
        with contextlib.suppress(OSError):
            db_path.unlink()
        raise BackupError(
            t("errors.ops.unreadable_backup", path=str(source_db), error=str(err))
        ) from err
    images, missing = _copy_files(BlobFiles(backup / BLOBS), BlobFiles(blob_root), hashes)
    return BackupResult(database=db_path, images=images, dropped=len(missing))
