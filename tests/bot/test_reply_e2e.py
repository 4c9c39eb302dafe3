"""Iterating by replying to results, end to end on the fake Discord."""

from __future__ import annotations

import base64
import time

import pytest

from bot.models import JobKind
from tests.bot.conftest import Harness
from tests.bot.iterating import answer_to, job_id_of, nth_result, replied_to, reply
from tests.discord_fake import png_file
from tests.discord_fake.models import Intent


def _data_uri_bytes(value: str) -> bytes:
    assert value.startswith("data:image/"), value[:40]
    return base64.b64decode(value.split(",", 1)[1])


async def test_a_chain_of_three_replies(kontext: Harness) -> None:
    fake = kontext.fake
    done = await kontext.edit_done("add a hat")
    tip = done.result
    prompts = ["make it red", "add a moon", "night time"]
    for step, prompt in enumerate(prompts, 2):
        asked = await reply(kontext, "alice", tip, f"{prompt}")
        status = await answer_to(kontext, asked)
        assert status.channel_id == done.thread_id  # the status is in the same thread
        new_tip = await nth_result(kontext, done.thread_id, step)
        # The result replies to the member's message, with the same buttons plus Undo.
        assert replied_to(new_tip) == asked.id
        assert prompt in new_tip.content
        assert "kx:undo:" in str(new_tip.components) and "kx:history:" in str(new_tip.components)
        # The edited image is the previous output's kept bytes, not a Discord URL.
        body = kontext.provider.bodies("submit")[-1]
        previous = fake.cdn.get(int(tip.attachments[0]["id"])).data
        assert _data_uri_bytes(body["image_url"]) == previous
        await fake.wait_for(lambda s=status: "Done" in fake.messages[s.id].content, what="done")
        tip = new_tip
    job = await kontext.job(job_id_of(tip))
    assert job.kind is JobKind.REPLY
    assert kontext.app is not None
    outputs = await kontext.app.repo.outputs_for_job(job.id)
    chain = await kontext.app.repo.lineage(outputs[0].id)
    assert [j.prompt for j, _ in chain] == ["add a hat", *prompts]
    info = await (await kontext.member("bob").click(tip, "Info")).response()
    for prompt in ["add a hat", *prompts]:
        assert prompt in info.content


async def test_a_reply_days_later_uses_the_kept_bytes(kontext: Harness) -> None:
    fake = kontext.fake
    done = await kontext.edit_done("add a hat")
    first = fake.cdn.get(int(done.result.attachments[0]["id"])).data
    fake.clock.advance(2 * 86400)  # every CDN URL the bot has seen has expired
    asked = await reply(kontext, "bob", done.result, "make it red")
    result = await nth_result(kontext, done.thread_id, 2)
    assert replied_to(result) == asked.id
    assert _data_uri_bytes(kontext.provider.bodies("submit")[-1]["image_url"]) == first


async def test_a_reply_after_the_bytes_were_purged_fetches_the_message_again(
    kontext: Harness,
) -> None:
    fake = kontext.fake
    assert kontext.app is not None
    done = await kontext.edit_done("add a hat")
    first = fake.cdn.get(int(done.result.attachments[0]["id"])).data
    fake.clock.advance(2 * 86400)
    # Retention is over: the kept bytes are gone, the message still has its attachment.
    assert await kontext.app.repo.purge_expired(now=time.time() + 400 * 86400) >= 1
    before = len(fake.requests_to("GET", "/channels/{channel_id}/messages/{message_id}"))
    await reply(kontext, "bob", done.result, "make it red")
    await nth_result(kontext, done.thread_id, 2)
    after = fake.requests_to("GET", "/channels/{channel_id}/messages/{message_id}")
    assert len(after) == before + 1  # fetched again for a fresh URL
    assert _data_uri_bytes(kontext.provider.bodies("submit")[-1]["image_url"]) == first


async def test_a_reply_whose_image_is_gone_gets_a_clear_answer(kontext: Harness) -> None:
    fake = kontext.fake
    assert kontext.app is not None
    done = await kontext.edit_done("add a hat")
    await kontext.app.repo.purge_expired(now=time.time() + 400 * 86400)
    fake.messages[done.result.id].payload["attachments"] = []
    asked = await reply(kontext, "bob", done.result, "make it red")
    answer = await answer_to(kontext, asked)
    assert "image of the message you replied to is gone" in answer.content
    assert "/edit" in answer.content
    assert kontext.provider.submits == 1


async def test_a_reply_with_two_extra_images(kontext: Harness) -> None:
    done = await kontext.edit_done("add a hat")
    files = [png_file("a.png", width=32, height=32), png_file("b.png", width=40, height=30)]
    await reply(kontext, "alice", done.result, "put them together", files=files)
    await nth_result(kontext, done.thread_id, 2)
    urls = kontext.provider.bodies("submit")[-1]["image_url"]
    assert isinstance(urls, list) and len(urls) == 3
    assert urls[0].startswith("data:image/")  # the result replied to comes first
    assert all("/attachments/" in u or u.startswith("http") for u in urls[1:])


async def test_too_many_extra_images_are_refused(kontext: Harness) -> None:
    done = await kontext.edit_done("add a hat")
    files = [png_file(f"{n}.png") for n in range(4)]
    asked = await reply(kontext, "alice", done.result, "all of them", files=files)
    answer = await answer_to(kontext, asked)
    assert "at most 4 images" in answer.content and "attach at most 3" in answer.content
    assert kontext.provider.submits == 1


async def test_a_reply_to_a_deleted_result_gets_a_clear_answer(kontext: Harness) -> None:
    fake = kontext.fake
    done = await kontext.edit_done("add a hat")
    ok = await (await kontext.member("alice").click(done.result, "Delete")).response()
    assert "Deleted" in ok.content
    asked = await reply(kontext, "alice", fake.messages[done.result.id], "make it red")
    answer = await answer_to(kontext, asked)
    assert "has been deleted" in answer.content
    assert kontext.provider.submits == 1


async def test_a_reply_to_an_ordinary_message_is_ignored(kontext: Harness) -> None:
    fake = kontext.fake
    done = await kontext.edit_done("add a hat")
    bob = kontext.member("bob")
    ordinary = await bob.send("general", "my cat", files=[png_file()])
    ignored = await reply(kontext, "alice", ordinary, f"{fake.bot_user.mention} make it red")
    # A reply that is handled after it proves the ignored one was seen and passed over.
    handled = await reply(kontext, "alice", done.result, "make it blue")
    await answer_to(kontext, handled)
    await nth_result(kontext, done.thread_id, 2)
    assert not [m for m in fake.bot_messages("general") if replied_to(m) == ignored.id]
    assert kontext.provider.submits == 2


async def test_without_message_content_a_reply_must_ping(kontext: Harness) -> None:
    fake = kontext.fake
    done = await kontext.edit_done("add a hat")
    silent = await reply(kontext, "alice", done.result, "make it red", ping=False)
    pinged = await reply(kontext, "alice", done.result, "make it blue")
    await answer_to(kontext, pinged)
    result = await nth_result(kontext, done.thread_id, 2)
    assert "make it blue" in result.content
    assert not [m for m in fake.bot_messages(done.thread_id) if replied_to(m) == silent.id]
    assert kontext.provider.submits == 2


@pytest.mark.discord_fake(granted_intents=Intent.MESSAGE_CONTENT)
async def test_with_message_content_any_reply_is_handled(harness: Harness) -> None:
    await harness.start(message_content=True)
    done = await harness.edit_done("add a hat")
    asked = await reply(harness, "alice", done.result, "make it red", ping=False)
    result = await nth_result(harness, done.thread_id, 2)
    assert replied_to(result) == asked.id and "make it red" in result.content


async def test_requester_only_policy_refuses_others_replies(kontext: Harness) -> None:
    assert kontext.app is not None
    done = await kontext.edit_done("add a hat")
    handle = await kontext.member("alice").run_command(
        "kontext-admin settings", iterate="requester"
    )
    assert "Saved" in (await handle.response()).content
    asked = await reply(kontext, "bob", done.result, "make it red")
    answer = await answer_to(kontext, asked)
    assert "Only <@" in answer.content and "can reroll or edit" in answer.content
    await reply(kontext, "alice", done.result, "make it blue")
    await nth_result(kontext, done.thread_id, 2)


async def test_limits_apply_to_replies(kontext: Harness) -> None:
    done = await kontext.edit_done("add a hat")
    handle = await kontext.member("alice").run_command("kontext-admin settings", daily_quota=1)
    assert "Saved" in (await handle.response()).content
    asked = await reply(kontext, "alice", done.result, "make it red")
    answer = await answer_to(kontext, asked)
    assert "quota" in answer.content.lower() or "limit" in answer.content.lower()
    assert kontext.provider.submits == 1
