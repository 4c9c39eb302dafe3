"""The edit history in Discord: History, the contact sheet, branches, Undo, Share."""

from __future__ import annotations

import time

from bot import history
from tests.bot.conftest import Harness
from tests.bot.iterating import (
    STAR,
    decode,
    job_id_of,
    labels,
    nth_result,
    react,
    replied_to,
    reply,
)
from tests.discord_fake import StoredMessage

RED = (200, 60, 40)  # the provider fake's first output colour


async def _chain(h: Harness, *prompts: str) -> tuple[int, list[StoredMessage]]:
    """An /edit and then a reply to each newest result; the thread and every result."""
    done = await h.edit_done("add a hat")
    results = [done.result]
    for prompt in prompts:
        await reply(h, "alice", results[-1], prompt)
        results.append(await nth_result(h, done.thread_id, len(results) + 1))
    return done.thread_id, results


def _sheet_of(h: Harness, answer: StoredMessage) -> bytes:
    assert answer.ephemeral or answer.flags & 64
    assert len(answer.attachments) == 1
    return h.fake.cdn.get(int(answer.attachments[0]["id"])).data


def _assert_tiles(sheet: bytes, steps: int) -> None:
    image = decode(sheet)
    assert image.format == "PNG"
    layout = history.sheet_layout(steps)
    assert image.size == (layout.width, layout.height)
    rgb = image.convert("RGB")
    for position in range(steps):
        left, top, right, bottom = layout.tile_box(position)
        pixel = rgb.getpixel(((left + right) // 2, (top + bottom) // 2))
        assert isinstance(pixel, tuple)
        assert all(abs(a - b) <= 12 for a, b in zip(pixel[:3], RED, strict=True)), pixel
    # Past the last tile there is only the sheet's background.
    if steps % layout.columns:
        left, top, right, bottom = layout.tile_box(steps)
        assert rgb.getpixel(((left + right) // 2, (top + bottom) // 2)) == history.SHEET_BACKGROUND


async def test_history_button_shows_a_contact_sheet_with_one_tile_per_step(
    kontext: Harness,
) -> None:
    _thread, results = await _chain(kontext, "make it red", "add a moon")
    answer = await (await kontext.member("bob").click(results[-1], "History")).response()
    assert "3 steps" in answer.content
    for number, prompt in enumerate(["add a hat", "make it red", "add a moon"], 1):
        assert f"{number}. " in answer.content and prompt in answer.content
    _assert_tiles(_sheet_of(kontext, answer), 3)


async def test_a_branch_from_step_1_shows_in_the_history(kontext: Harness) -> None:
    fake = kontext.fake
    thread, results = await _chain(kontext, "make it red")
    # Reply to step 1 again: a branch beside "make it red".
    await reply(kontext, "bob", results[0], "make it green")
    branch = await nth_result(kontext, thread, 3)
    assert replied_to(branch) is not None
    main = await (await kontext.member("bob").click(results[1], "History")).response()
    assert "1. " in main.content and "↳ 1 other branch" in main.content
    assert "make it red" in main.content and "make it green" not in main.content
    # /kontext history without a message, in the thread: the newest result (the branch).
    newest = await kontext.member("carol").run_command("kontext history", in_channel=thread)
    text = (await newest.response()).content
    assert "make it green" in text and "↳ 1 other branch" in text and "2 steps" in text
    # With a message link, any result.
    link = f"https://discord.com/channels/{fake.guild.id}/{thread}/{results[1].id}"
    linked = await kontext.member("carol").run_command("kontext history", message=link)
    assert "make it red" in (await linked.response()).content
    # The message menu.
    menu = await kontext.member("carol").use_message_command("Edit history", results[0])
    answer = await menu.response()
    assert "1 step" in answer.content and "↳ 2 branches from here" in answer.content
    _assert_tiles(_sheet_of(kontext, answer), 1)


async def test_history_of_something_else_is_refused(kontext: Harness) -> None:
    done = await kontext.edit_done("add a hat")
    menu = await kontext.member("bob").use_message_command("Edit history", done.status)
    assert "not one of my results" in (await menu.response()).content
    command = await kontext.member("bob").run_command("kontext history", message="not a link")
    assert "message link" in (await command.response()).content


async def test_undo_reposts_the_parent_and_replies_continue_from_it(kontext: Harness) -> None:
    fake = kontext.fake
    assert kontext.app is not None
    thread, results = await _chain(kontext, "make it red")
    assert "Undo" not in labels(results[0]) and "Undo" in labels(results[1])
    refused = await (await kontext.member("bob").click(results[1], "Undo")).response()
    assert "Back to step 1" in refused.content  # anyone may iterate by default
    undone = await fake.wait_for(
        lambda: next((m for m in fake.bot_messages(thread) if "Back to step 1" in m.content), None),
        what="the undo post",
    )
    first = fake.cdn.get(int(results[0].attachments[0]["id"])).data
    assert fake.cdn.get(int(undone.attachments[0]["id"])).data == first
    assert job_id_of(undone) == job_id_of(results[0])  # its buttons act on step 1
    await reply(kontext, "alice", undone, "make it purple")
    third = await nth_result(kontext, thread, 4)  # the undo post is the third
    assert replied_to(third) is not None
    child = await kontext.job(job_id_of(third))
    step1 = await kontext.app.repo.outputs_for_job(job_id_of(results[0]))
    assert child.parent_output_id == step1[0].id
    sheet = await (await kontext.member("bob").click(third, "History")).response()
    assert "make it purple" in sheet.content and "make it red" not in sheet.content


async def test_undo_follows_the_iterate_policy(kontext: Harness) -> None:
    _thread, results = await _chain(kontext, "make it red")
    handle = await kontext.member("alice").run_command(
        "kontext-admin settings", iterate="requester"
    )
    assert "Saved" in (await handle.response()).content
    refused = await (await kontext.member("bob").click(results[1], "Undo")).response()
    assert "Only <@" in refused.content


async def test_stars_and_share_post_to_the_gallery_once(harness: Harness) -> None:
    fake = harness.fake
    gallery = fake.add_channel(fake.guild, "gallery")
    await harness.start()
    handle = await harness.member("alice").run_command(
        "kontext-admin remix gallery", channel=gallery
    )
    assert "posted in" in (await handle.response()).content
    done = await harness.edit_done("add a hat")
    assert "Share" in labels(done.result)
    await react(harness, harness.member("bob"), done.result)
    posted = await fake.wait_for_message(gallery.id, lambda m: bool(m.attachments))
    assert "add a hat" in posted.content and str(done.result.id) in posted.content
    assert not posted.payload["mentions"]  # names people without pinging them
    await fake.wait_for(
        lambda: fake.bot_user.id in fake.reactions.get(done.result.id, {}).get(STAR, set()),
        what="the bot's star on the shared result",
    )
    again = await (await harness.member("carol").click(done.result, "Share")).response()
    assert "already in the gallery" in again.content
    assert len(fake.bot_messages(gallery.id)) == 1


async def test_share_button_without_a_gallery_is_not_shown(kontext: Harness) -> None:
    done = await kontext.edit_done("add a hat")
    assert "Share" not in labels(done.result)


async def test_share_after_the_bytes_were_purged_uses_the_posted_image(harness: Harness) -> None:
    fake = harness.fake
    gallery = fake.add_channel(fake.guild, "gallery")
    app = await harness.start()
    handle = await harness.member("alice").run_command(
        "kontext-admin remix gallery", channel=gallery
    )
    assert "posted in" in (await handle.response()).content
    done = await harness.edit_done("add a hat")
    await app.repo.purge_expired(now=time.time() + 400 * 86_400)
    shared = await (await harness.member("bob").click(done.result, "Share")).response()
    assert "Shared to the gallery" in shared.content
    posted = await fake.wait_for_message(gallery.id, lambda m: bool(m.attachments))
    original = fake.cdn.get(int(done.result.attachments[0]["id"])).data
    assert fake.cdn.get(int(posted.attachments[0]["id"])).data == original
