"""Remix channels: posts and replies become edits, each new chain in its own thread."""

from __future__ import annotations

import pytest

from bot.models import JobKind
from tests.bot.conftest import Harness
from tests.bot.iterating import answer_to, job_id_of, nth_result, replied_to, reply
from tests.discord_fake import png_file
from tests.discord_fake.models import Intent

CONTENT = pytest.mark.discord_fake(granted_intents=Intent.MESSAGE_CONTENT)


async def _add_remix(h: Harness, style: str | None = None, channel: str = "images") -> str:
    options = {"channel": h.fake.channel(channel)}
    if style:
        options["style"] = style
    handle = await h.member("alice").run_command("kontext-admin remix add", **options)
    return (await handle.response()).content


async def test_remix_commands_need_manage_server(kontext: Harness) -> None:
    fake = kontext.fake
    refused = await kontext.member("bob").run_command(
        "kontext-admin remix add", channel=fake.channel("images")
    )
    assert "Manage Server" in (await refused.response()).content
    added = await _add_remix(kontext, style="watercolor, soft light")
    assert "is a remix channel now" in added and "watercolor" in added
    assert "mention" in added  # no Message Content intent here: members must mention the bot
    listed = await kontext.member("bob").run_command("kontext-admin remix list")
    text = (await listed.response()).content
    assert f"<#{fake.channel('images').id}>" in text and "watercolor" in text
    removed = await kontext.member("alice").run_command(
        "kontext-admin remix remove", channel=fake.channel("images")
    )
    assert "no longer a remix channel" in (await removed.response()).content
    listed = await kontext.member("bob").run_command("kontext-admin remix list")
    assert "No remix channels" in (await listed.response()).content


@CONTENT
async def test_a_post_starts_a_chain_in_its_own_thread(harness: Harness) -> None:
    await harness.start(message_content=True)
    fake = harness.fake
    await _add_remix(harness, style="watercolor")
    post = await harness.member("bob").send("images", "a cat in a hat", files=[png_file()])
    thread = await fake.wait_for(lambda: fake.channels.get(post.id), what="the chain's thread")
    assert thread.is_thread and thread.parent_id == fake.channel("images").id
    status = await fake.wait_for_message(thread.id, lambda m: "a cat in a hat" in m.content)
    result = await nth_result(harness, thread.id, 1)
    assert replied_to(result) is None  # the request is the thread's starter, in the channel
    assert harness.provider.bodies("submit")[-1]["prompt"] == "a cat in a hat, watercolor"
    job = await harness.job(job_id_of(result))
    assert job.kind is JobKind.REMIX and job.thread_id == thread.id and job.user_id != 0
    await fake.wait_for(lambda: "Done" in fake.messages[status.id].content, what="done")
    # Inside the thread, a reply (no ping needed with Message Content) continues the chain.
    asked = await reply(harness, "carol", result, "now at night.", ping=False)
    second = await nth_result(harness, thread.id, 2)
    assert replied_to(second) == asked.id
    assert harness.provider.bodies("submit")[-1]["prompt"] == "now at night. watercolor"
    child = await harness.job(job_id_of(second))
    assert child.kind is JobKind.REMIX and child.parent_output_id is not None


@CONTENT
async def test_a_reply_to_a_members_image_remixes_it(harness: Harness) -> None:
    await harness.start(message_content=True)
    fake = harness.fake
    await _add_remix(harness)
    picture = await harness.member("bob").send("images", "", files=[png_file("cat.png")])
    asked = await reply(harness, "carol", picture, "paint it like a fresco", ping=False)
    thread = await fake.wait_for(lambda: fake.channels.get(asked.id), what="a new thread")
    result = await nth_result(harness, thread.id, 1)
    assert "paint it like a fresco" in result.content
    body = harness.provider.bodies("submit")[-1]
    assert str(picture.attachments[0]["id"]) in body["image_url"]  # bob's image, by URL
    job = await harness.job(job_id_of(result))
    assert job.user_id == fake.user("carol").id and job.parent_output_id is None
    # Nothing was made of bob's post alone (an image without words).
    assert fake.channels.get(picture.id) is None
    assert harness.provider.submits == 1


@CONTENT
async def test_chat_in_a_remix_channel_is_ignored(harness: Harness) -> None:
    await harness.start(message_content=True)
    fake = harness.fake
    await _add_remix(harness)
    bob = harness.member("bob")
    chat = await bob.send("images", "nice pictures today")
    chat_reply = await reply(harness, "carol", chat, "agreed", ping=False)
    post = await bob.send("images", "a dog on a skateboard", files=[png_file()])
    thread = await fake.wait_for(lambda: fake.channels.get(post.id), what="the post's thread")
    await nth_result(harness, thread.id, 1)
    assert fake.channels.get(chat.id) is None and fake.channels.get(chat_reply.id) is None
    assert not [m for m in fake.bot_messages("images") if replied_to(m) in (chat.id, chat_reply.id)]
    assert harness.provider.submits == 1


async def test_without_message_content_a_remix_post_must_mention_the_bot(kontext: Harness) -> None:
    fake = kontext.fake
    await _add_remix(kontext)
    bob = kontext.member("bob")
    unseen = await bob.send("images", "a cat", files=[png_file()])
    seen = await bob.send("images", f"{fake.bot_user.mention} a cat", files=[png_file()])
    thread = await fake.wait_for(lambda: fake.channels.get(seen.id), what="the post's thread")
    await nth_result(kontext, thread.id, 1)
    assert kontext.provider.bodies("submit")[-1]["prompt"] == "a cat"  # the mention is stripped
    assert fake.channels.get(unseen.id) is None
    assert kontext.provider.submits == 1


@CONTENT
async def test_too_many_images_in_a_remix_post_are_refused(harness: Harness) -> None:
    await harness.start(message_content=True)
    await _add_remix(harness)
    files = [png_file(f"{n}.png") for n in range(5)]
    post = await harness.member("bob").send("images", "merge these", files=files)
    answer = await answer_to(harness, post)
    assert "at most 4 images" in answer.content and "has 5" in answer.content
    assert harness.provider.submits == 0


@CONTENT
async def test_in_a_remix_channel_anyone_may_remix_whatever_the_policy(harness: Harness) -> None:
    await harness.start(message_content=True)
    fake = harness.fake
    await _add_remix(harness)
    handle = await harness.member("alice").run_command(
        "kontext-admin settings", iterate="requester"
    )
    assert "Saved" in (await handle.response()).content
    post = await harness.member("bob").send("images", "a red fox", files=[png_file()])
    thread = await fake.wait_for(lambda: fake.channels.get(post.id), what="the post's thread")
    result = await nth_result(harness, thread.id, 1)
    # Carol remixes Bob's result in its thread, adding two images of her own.
    extra = [png_file("a.png"), png_file("b.png")]
    asked = await reply(harness, "carol", result, "add these friends", files=extra, ping=False)
    second = await nth_result(harness, thread.id, 2)
    assert replied_to(second) == asked.id
    urls = harness.provider.bodies("submit")[-1]["image_url"]
    assert isinstance(urls, list) and len(urls) == 3 and urls[0].startswith("data:image/")
    child = await harness.job(job_id_of(second))
    assert child.kind is JobKind.REMIX and child.user_id == fake.user("carol").id
