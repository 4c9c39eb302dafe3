"""Durable storage: one async repository API (:class:`storage.sql.Repository`), two backends.

``KONTEXT_DATABASE_URL`` picks the backend: ``sqlite:///relative/path.db`` or
``sqlite:////absolute/path.db`` (the default ``sqlite:///data/kontext.db``; image bytes go to
``blobs/`` beside the file unless ``data_dir`` says otherwise), or ``postgresql://...`` for
several processes or machines (image bytes in the database).
"""

from __future__ import annotations

from pathlib import Path

from bot.i18n import t
from bot.redact import redact_url, scrub_password
from storage.base import (
    DatabaseFault,
    DatabaseTooNew,
    DatabaseUnusable,
    EnqueueLimits,
    LimitExceeded,
    LimitKind,
    StorageError,
)
from storage.sql import Repository

__all__ = [
    "DatabaseFault",
    "DatabaseTooNew",
    "DatabaseUnusable",
    "EnqueueLimits",
    "LimitExceeded",
    "LimitKind",
    "Repository",
    "StorageError",
    "migrate",
    "open_repository",
    "redact_url",
    "resolve_database_url",
    "scrub_password",
]


def resolve_database_url(url: str) -> str:
    """A SQLite URL with its path made absolute (from the working folder, once), so the log
    and every later use name the same file; other URLs unchanged."""
    prefix = "sqlite:///"
    if not url.lower().startswith(prefix) or len(url) == len(prefix):
        return url
    return f"{prefix}{Path(url[len(prefix) :]).resolve()}"


def open_repository(url: str, *, data_dir: Path | None = None) -> Repository:
    """An unconnected repository for ``url``; the caller awaits ``connect()`` (which applies
    migrations) and later ``close()``."""
    scheme = url.split(":", 1)[0].lower()
    if scheme == "sqlite":
        from storage.sqlite import SqliteRepository

        prefix = "sqlite:///"
        if not url.startswith(prefix) or len(url) == len(prefix):
            raise StorageError(t("errors.storage.bad_sqlite_url", url=repr(url)))
        return SqliteRepository(Path(url[len(prefix) :]), data_dir=data_dir)
    if scheme in {"postgresql", "postgres"}:
        from storage.postgres import PostgresRepository

        return PostgresRepository(url)
    raise StorageError(t("errors.storage.unknown_database", url=repr(redact_url(url))))


async def migrate(url: str) -> int:
    """Bring the database at ``url`` to the newest schema; returns the version it is at."""
    repository = open_repository(url)
    await repository.connect()
    try:
        return await repository.schema_version()
    finally:
        await repository.close()
