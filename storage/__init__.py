"""Durable storage: one async repository API (:class:`storage.base.Repository`), two backends.

``KONTEXT_DATABASE_URL`` picks the backend: ``sqlite:///relative/path.db`` or
``sqlite:////absolute/path.db`` (the default ``sqlite:///data/kontext.db``; image bytes go to
``blobs/`` beside the file unless ``data_dir`` says otherwise), or ``postgresql://...`` for
several processes or machines (image bytes in the database).
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

from storage.base import (
    DatabaseFault,
    DatabaseTooNew,
    DatabaseUnusable,
    EnqueueLimits,
    LimitExceeded,
    LimitKind,
    Repository,
    StorageError,
)

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


_PASSWORD_PARAMS = frozenset({"password", "passfile", "sslpassword"})


def redact_url(url: str) -> str:
    """The URL without its password (in the user info or a ``password=`` parameter), fit for
    logs and messages; a URL too broken to parse is not shown at all."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<a database URL that cannot be parsed>"
    original = parts
    userinfo, at, hostport = parts.netloc.rpartition("@")
    if at and ":" in userinfo:
        parts = parts._replace(netloc=f"{userinfo.split(':', 1)[0]}:***@{hostport}")
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    if any(key.lower() in _PASSWORD_PARAMS for key, _ in pairs):
        query = [(k, "***" if k.lower() in _PASSWORD_PARAMS else v) for k, v in pairs]
        parts = parts._replace(query=urlencode(query, safe="*"))
    return url if parts == original else urlunsplit(parts)


def scrub_password(text: str, url: str) -> str:
    """``text`` (say, a driver's error message) with the password of ``url`` masked."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return text
    userinfo, at, _ = parts.netloc.rpartition("@")
    secrets = [userinfo.split(":", 1)[1]] if at and ":" in userinfo else []
    secrets += [v for k, v in parse_qsl(parts.query) if k.lower() in _PASSWORD_PARAMS]
    for secret in list(secrets):
        secrets.append(unquote(secret))
    for secret in sorted(filter(None, secrets), key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


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
            raise StorageError(
                f"KONTEXT_DATABASE_URL {url!r} is not a SQLite URL this bot understands: use "
                "sqlite:///relative/path.db or sqlite:////absolute/path.db."
            )
        return SqliteRepository(Path(url[len(prefix) :]), data_dir=data_dir)
    if scheme in {"postgresql", "postgres"}:
        from storage.postgres import PostgresRepository

        return PostgresRepository(url)
    raise StorageError(
        f"KONTEXT_DATABASE_URL {redact_url(url)!r} names an unknown database: use "
        "sqlite:///path/to/kontext.db or postgresql://user@host/dbname."
    )


async def migrate(url: str) -> int:
    """Bring the database at ``url`` to the newest schema; returns the version it is at."""
    repository = open_repository(url)
    await repository.connect()
    try:
        return await repository.schema_version()
    finally:
        await repository.close()
