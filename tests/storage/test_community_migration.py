"""Migration 8: the moderation-log column, and servers' stored "ping when done: off" (the old
default nobody could change) dropped so they get the new default (on)."""

from __future__ import annotations

from storage import migrate, open_repository

from .undo import back_to

#: A server's settings as version 7 stored them.
OLD_SETTINGS = (
    "INSERT INTO guild_creative (guild_id, settings, updated_at) VALUES "
    """(7, '{"guild_id": 7, "ping_when_done": false, "default_count": 2}', 0)"""
)


async def test_migration_8_adds_the_log_channel_and_resets_the_ping_default(
    fresh_db_url: str,
) -> None:
    await migrate(fresh_db_url)
    await back_to(fresh_db_url, 7, OLD_SETTINGS)
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
