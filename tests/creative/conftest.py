"""Creative tests: the storage fixtures (every ``repo`` test runs on SQLite and PostgreSQL)."""

from __future__ import annotations

from tests.storage.conftest import (  # noqa: F401 - pytest finds fixtures by name
    T0,
    db_url,
    pg_database,
    repo,
)
