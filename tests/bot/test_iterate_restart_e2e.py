"""Replies, history and remix channels across a restart of the bot (same database), on
SQLite and on PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest

from tests import pg
from tests.bot.conftest import Harness
from tests.bot.iterating import nth_result, replied_to, reply
from tests.discord_fake import png_file


async def test_replies_history_and_remix_channels_survive_a_restart(harness: Harness) -> None:
    await _scenario(harness, {})


async def test_the_same_on_postgres(harness: Harness) -> None:
    reason = await pg.unreachable_reason()
    if reason is not None:
        if pg.postgres_required():
            pytest.fail(reason)
        pytest.skip(reason)
    url = await pg.create_temp_database()
    try:
        await _scenario(harness, {"database_url": url})
        await harness.stop()
    finally:
        await pg.drop_database(url)


async def _scenario(harness: Harness, overrides: dict[str, Any]) -> None:
    await harness.start(**overrides)
    fake = harness.fake
    done = await harness.edit_done("before the restart")
    await reply(harness, "alice", done.result, "make it red")
    second = await nth_result(harness, done.thread_id, 2)
    added = await harness.member("alice").run_command(
        "kontext-admin remix add", channel=fake.channel("images"), style="ink"
    )
    assert "remix channel now" in (await added.response()).content
    await harness.restart(**overrides)
    # Buttons posted before the restart, and replies to results made before it.
    answer = await (await harness.member("bob").click(second, "History")).response()
    assert "2 steps" in answer.content and "make it red" in answer.content
    asked = await reply(harness, "bob", done.result, "make it green")
    branch = await nth_result(harness, done.thread_id, 3)
    assert replied_to(branch) == asked.id
    tree = await (await harness.member("bob").click(second, "History")).response()
    assert "↳ 1 other branch" in tree.content
    undo = await (await harness.member("alice").click(second, "Undo")).response()
    assert "Back to step 1" in undo.content
    post = await harness.member("carol").send(
        "images", f"{fake.bot_user.mention} a fox", files=[png_file()]
    )
    thread = await fake.wait_for(lambda: fake.channels.get(post.id), what="a remix thread")
    await nth_result(harness, thread.id, 1)
    assert harness.provider.bodies("submit")[-1]["prompt"] == "a fox, ink"
