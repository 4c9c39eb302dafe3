"""The same bot over PostgreSQL (KONTEXT_DATABASE_URL=postgresql://...)."""

from __future__ import annotations

import pytest

from tests import pg
from tests.bot.conftest import Harness


async def test_edit_and_buttons_after_restart_on_postgres(harness: Harness) -> None:
    reason = await pg.unreachable_reason()
    if reason is not None:
        if pg.postgres_required():
            pytest.fail(reason)
        pytest.skip(reason)
    url = await pg.create_temp_database()
    try:
        await harness.start(database_url=url)
        done = await harness.edit_done("on postgres", seed=31)
        await harness.restart(database_url=url)
        info = await (await harness.member("bob").click(done.result, "Info")).response()
        assert "on postgres" in info.content and "31" in info.content
        await harness.stop()
    finally:
        await pg.drop_database(url)
