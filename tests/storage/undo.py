"""Taking a test database back to an older schema version, so a migration is tested on rows
the older code wrote (a plain module, like tests/pg.py)."""

from __future__ import annotations

import sqlite3

import asyncpg
import pytest

from storage.schema import latest_version

#: What undoes each migration (the same SQL on both backends; PostgreSQL runs its extra
#: statements of :data:`UNDO_POSTGRES` after these). Going back past a version needs its entry.
UNDO: dict[int, tuple[str, ...]] = {
    11: ("ALTER TABLE jobs DROP COLUMN route_text",),
    10: (
        "ALTER TABLE jobs DROP COLUMN error_text",
        "ALTER TABLE batch_items DROP COLUMN error_text",
    ),
    9: ("ALTER TABLE jobs DROP COLUMN upload_limit",),
    8: ("ALTER TABLE guild_settings DROP COLUMN modlog_channel_id",),
}

#: PostgreSQL's own objects of a migration (the one-statement claim of version 9).
UNDO_POSTGRES: dict[int, tuple[str, ...]] = {
    9: ("DROP FUNCTION kontext_claim",),
}


async def back_to(url: str, version: int, *then: str) -> None:
    """Undo every migration above ``version`` (newest first), then run ``then``."""
    newest = latest_version("sqlite")
    missing = [v for v in range(newest, version, -1) if v not in UNDO]
    if missing:
        pytest.fail(f"tests/storage/undo.py: no way to undo migration(s) {missing}")
    statements = [f"DELETE FROM kontext_schema WHERE version > {int(version)}"]
    for undone in range(newest, version, -1):
        statements.extend(UNDO[undone])
    if not url.startswith("sqlite"):
        for undone in range(newest, version, -1):
            statements.extend(UNDO_POSTGRES.get(undone, ()))
    statements.extend(then)
    if url.startswith("sqlite"):
        with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
            for statement in statements:
                conn.execute(statement)
        return
    conn = await asyncpg.connect(url)
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()
