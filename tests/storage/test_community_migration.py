"""Migration 8: the moderation-log column, and servers' stored "ping when done: off" (the old
default nobody could change) dropped so they get the new default (on)."""

from __future__ import annotations

import sqlite3

import asyncpg

from storage import migrate, open_repository

# Migration 9 (the job's upload limit; PostgreSQL's one-statement claim) undone first.
UNDO_9 = (
    "DELETE FROM kontext_schema WHERE version = 9",
    "ALTER TABLE jobs DROP COLUMN upload_limit",
)
UNDO_9_POSTGRES = ("DROP FUNCTION kontext_claim",)
UNDO_8 = (
    "DELETE FROM kontext_schema WHERE version = 8",
    "ALTER TABLE guild_settings DROP COLUMN modlog_channel_id",
    "INSERT INTO guild_creative (guild_id, settings, updated_at) VALUES "
    """(7, '{"guild_id": 7, "ping_when_done": false, "default_count": 2}', 0)""",
)


async def _back_to_version_7(url: str) -> None:
    if url.startswith("sqlite"):
        with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
            for statement in UNDO_9 + UNDO_8:
                conn.execute(statement)
        return
    conn = await asyncpg.connect(url)
    try:
        for statement in UNDO_9 + UNDO_9_POSTGRES + UNDO_8:
            await conn.execute(statement)
    finally:
        await conn.close()


async def test_migration_8_adds_the_log_channel_and_resets_the_ping_default(
    fresh_db_url: str,
) -> None:
    await migrate(fresh_db_url)
    await _back_to_version_7(fresh_db_url)
    assert await migrate(fresh_db_url) >= 8
    repo = open_repository(fresh_db_url)
    await repo.connect()
    try:
        creative = await repo.get_creative_settings(7)
        assert creative.ping_when_done is None and creative.default_count == 2
        settings = await repo.get_guild_settings(7)
        assert settings.modlog_channel_id is None
        await repo.save_guild_settings(
            settings.model_copy(update={"modlog_channel_id": 2**62}), now=1.0
        )
        assert (await repo.get_guild_settings(7)).modlog_channel_id == 2**62
    finally:
        await repo.close()
