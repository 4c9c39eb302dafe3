"""Every action that names a job or an output is refused from another server.

A second guild ("Other Guild", member mallory) shares the bot with the test guild. Mallory
sends what a modified client could: modal submissions and button presses whose custom_ids
name alice's job, and a /kontext history link to alice's result. Each is refused with a clear
answer, nothing is queued, and nothing is posted in mallory's server.
"""

from __future__ import annotations

import pytest

from tests.bot.conftest import Delivered, Harness
from tests.bot.iterating import answer_to, job_id_of, nth_result, reply
from tests.discord_fake import Actor, StoredMessage

ANOTHER_SERVER = "belongs to another server"


async def job_count(harness: Harness) -> int:
    assert harness.app is not None
    return len(await harness.app.repo.list_jobs(limit=10_000))


@pytest.fixture
async def mallory(harness: Harness) -> Actor:
    """Mallory, alone in a second guild the bot is also in; the bot is running."""
    harness.fake.add_guild("Other Guild", channels=("lobby",), humans=("mallory",))
    await harness.start(dev_guild_id=None)
    return harness.fake.member("mallory")


@pytest.fixture
async def alices(harness: Harness, mallory: Actor) -> Delivered:
    """A result of alice's in the test guild (edited once, so it has Undo)."""
    first = await harness.edit_done("a red fox")
    asked = await reply(harness, "alice", first.result, "add a hat")
    status = await answer_to(harness, asked)
    second = await nth_result(harness, first.thread_id, 2)
    # The status says Done only once the result is stored and indexed.
    await harness.fake.wait_for(
        lambda: "Done" in harness.fake.messages[status.id].content, what="the reply's job done"
    )
    return Delivered(job_id_of(second), status, first.thread_id, second)


def refused(answer: StoredMessage) -> None:
    assert ANOTHER_SERVER in answer.content, answer.content
    assert answer.ephemeral


async def nothing_posted_in_lobby(harness: Harness) -> None:
    assert harness.fake.bot_messages("lobby") == []


async def test_a_modal_from_another_server_naming_an_output_is_refused(
    harness: Harness, mallory: Actor, alices: Delivered
) -> None:
    before = await job_count(harness)
    handle = await mallory.forge_modal(
        f"kx:editm:{alices.job_id}", {"prompt": "steal it"}, in_channel="lobby"
    )
    refused(await handle.response())
    assert await job_count(harness) == before
    await nothing_posted_in_lobby(harness)


async def test_the_edit_image_modal_naming_a_result_of_another_server_is_refused(
    harness: Harness, mallory: Actor, alices: Delivered
) -> None:
    before = await job_count(harness)
    handle = await mallory.forge_modal(
        f"kx:msgm:{alices.result.id}", {"prompt": "steal it"}, in_channel="lobby"
    )
    refused(await handle.response())
    assert await job_count(harness) == before
    await nothing_posted_in_lobby(harness)


@pytest.mark.parametrize(
    "action", ["reroll", "edit", "info", "delete", "cancel", "history", "undo", "share"]
)
async def test_a_button_naming_a_job_of_another_server_is_refused(
    harness: Harness, mallory: Actor, alices: Delivered, action: str
) -> None:
    own = await mallory.send("lobby", "hello")
    before = await job_count(harness)
    handle = await mallory.forge_click(own, f"kx:{action}:{alices.job_id}", in_channel="lobby")
    refused(await handle.response())
    assert await job_count(harness) == before
    await nothing_posted_in_lobby(harness)
    assert not alices.result.deleted


async def test_a_history_link_to_a_result_of_another_server_is_refused(
    harness: Harness, mallory: Actor, alices: Delivered
) -> None:
    link = (
        f"https://discord.com/channels/{harness.fake.guild.id}/{alices.thread_id}/"
        f"{alices.result.id}"
    )
    handle = await mallory.run_command(
        "kontext history", in_channel=harness.fake.channel("lobby"), message=link
    )
    refused(await handle.response())
    await nothing_posted_in_lobby(harness)


async def test_the_same_presses_work_in_the_jobs_own_server(
    harness: Harness, mallory: Actor, alices: Delivered
) -> None:
    """The refusal is about the server, not the custom_id: alice's own Info answers."""
    handle = await harness.member("alice").click(alices.result, "Info")
    answer = await handle.response()
    assert f"Job {alices.job_id}" in answer.content
