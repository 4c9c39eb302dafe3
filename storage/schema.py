"""The numbered migration files of each backend, read from the installed package.

Files are ``storage/migrations/<backend>/NNNN_name.sql``; the number is the schema version a
file brings the database to. A backend applies every file above the recorded version in one
transaction and records each version in ``kontext_schema``. A database whose recorded version
is above the newest file was written by newer code and is refused (DatabaseTooNew), because
this code cannot know what that schema means.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources

from bot.i18n import t
from storage.base import DatabaseTooNew

VERSION_TABLE = "kontext_schema"
_FILE_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str


def load_migrations(backend: str) -> list[Migration]:
    """Every migration of ``backend`` ("sqlite" or "postgres"), oldest first."""
    folder = resources.files("storage").joinpath("migrations", backend)
    found: list[Migration] = []
    for entry in folder.iterdir():
        match = _FILE_NAME.match(entry.name)
        if match is None:
            continue
        found.append(Migration(int(match[1]), match[2], entry.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if versions != list(range(1, len(found) + 1)):
        raise RuntimeError(f"{backend} migrations are not numbered 1..n: {versions}")
    return found


def latest_version(backend: str) -> int:
    return len(load_migrations(backend))


def pending(backend: str, current: int, where: str) -> list[Migration]:
    """The migrations to apply to a database at ``current``; refuses a newer database."""
    migrations = load_migrations(backend)
    newest = len(migrations)
    if current > newest:
        raise DatabaseTooNew(
            t("errors.storage.too_new", where=where, current=current, newest=newest)
        )
    return migrations[current:]
