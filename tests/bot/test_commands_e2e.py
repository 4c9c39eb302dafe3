"""/imagine, the "Edit image" menu, /kontext, DMs, missing permissions and NSFW policy."""

from __future__ import annotations

import re

import pytest

from tests.bot.conftest import Harness
from tests.discord_fake import Intent, Perm, png_file
from tests.fakes import ModelsLabFake, Outcome, docs_dir


def _job_id(content: str) -> int:
    return int(re.findall(r"job (\d+)", content)[0])


async def test_imagine_posts_a_result(kontext: Harness) -> None:
    handle = await kontext.member("alice").run_command(
        "imagine", in_channel="general", prompt="a lighthouse at dusk", aspect_ratio="16:9", seed=5
    )
    ack = await handle.response()
    job = await kontext.job(_job_id(ack.content))
    result = await kontext.result_in(job.thread_id or job.channel_id)
    assert "a lighthouse at dusk" in result.content and "seed 5" in result.content
    body = kontext.provider.bodies("submit")[0]
    assert body["aspect_ratio"] == "16:9" and "image_url" not in body


async def test_edit_image_menu_edits_a_members_picture(kontext: Harness) -> None:
    alice = kontext.member("alice")
    post = await alice.send("general", "look", files=[png_file("cat.png", color="blue")])
    handle = await alice.use_message_command("Edit image", post)
    assert await handle.acknowledged() == 9
    ack = await (await alice.submit_modal({"What should change?": "give it wings"})).response()
    job = await kontext.job(_job_id(ack.content))
    result = await kontext.result_in(job.thread_id or job.channel_id)
    assert "give it wings" in result.content


async def test_edit_image_menu_on_a_result_keeps_the_chain(kontext: Harness) -> None:
    done = await kontext.edit_done("add a hat")
    alice = kontext.member("alice")
    handle = await alice.use_message_command("Edit image", done.result)
    assert await handle.acknowledged() == 9, (await handle.response()).content
    ack = await (await alice.submit_modal({"What should change?": "and a scarf"})).response()
    child = await kontext.job(_job_id(ack.content))
    assert child.parent_output_id is not None


async def test_edit_image_menu_on_a_message_without_images(kontext: Harness) -> None:
    alice = kontext.member("alice")
    post = await alice.send("general", "no picture here")
    answer = await (await alice.use_message_command("Edit image", post)).response()
    assert "no image attachments" in answer.content and answer.flags & 64


async def test_kontext_settings_queue_usage_help(kontext: Harness) -> None:
    alice, bob = kontext.member("alice"), kontext.member("bob")
    view = await (
        await alice.run_command("kontext-admin settings", in_channel="general")
    ).response()
    assert "Kontext settings" in view.content
    denied = await (
        await bob.run_command("kontext-admin settings", in_channel="general", nsfw="spoiler")
    ).response()
    assert "Manage Server" in denied.content
    saved = await (
        await alice.run_command("kontext-admin settings", in_channel="general", nsfw="spoiler")
    ).response()
    assert "Saved" in saved.content and "NSFW outputs: spoiler" in saved.content

    await kontext.edit_done("add a hat")
    usage = await (await alice.run_command("kontext usage", in_channel="general")).response()
    assert "1 jobs" in usage.content
    queue = await (await alice.run_command("kontext queue", in_channel="general")).response()
    assert "no jobs waiting" in queue.content
    helptext = await (await bob.run_command("kontext help", in_channel="general")).response()
    assert "/edit" in helptext.content


async def test_kontext_queue_and_cancel_by_number(kontext: Harness) -> None:
    kontext.provider.script("submit", Outcome.stall())
    alice = kontext.member("alice")
    job_id = _job_id((await kontext.edit("slow"))[1].content)
    queue = await (await alice.run_command("kontext queue", in_channel="general")).response()
    assert f"job {job_id}" in queue.content and "Your jobs" in queue.content
    other = await (
        await kontext.member("bob").run_command("kontext cancel", in_channel="general", job=job_id)
    ).response()
    assert "Only the person who asked" in other.content
    ok = await (
        await alice.run_command("kontext cancel", in_channel="general", job=job_id)
    ).response()
    assert "cancelled" in ok.content
    await kontext.fake.wait_for(lambda: kontext.provider.submits >= 1, what="the submit")
    kontext.provider.release()


async def test_dms_say_clearly_that_they_do_not_work(harness: Harness) -> None:
    await harness.start(dev_guild_id=None)  # global commands, as in production
    assert {c["name"] for c in harness.fake.global_commands} >= {"edit", "imagine", "kontext"}
    assert not harness.fake.guild_commands.get(harness.fake.guild.id)
    alice = harness.member("alice")
    dm = harness.fake.dm_channel(alice.user)
    answer = await (
        await alice.run_command("edit", in_channel=dm, prompt="x", image=png_file())
    ).response()
    assert "servers only" in answer.content
    helptext = await (await alice.run_command("kontext help", in_channel=dm)).response()
    assert "/edit" in helptext.content
    assert harness.provider.submits == 0


async def test_without_thread_permission_the_result_goes_to_the_channel(kontext: Harness) -> None:
    general = kontext.fake.channel("general")
    await kontext.fake.set_bot_permissions(general, deny=Perm.CREATE_PUBLIC_THREADS)
    _, ack = await kontext.edit("no threads")
    assert "can't create threads" in ack.content
    result = await kontext.result_in(general.id)
    assert result.attachments


async def test_without_attach_permission_the_result_is_sent_by_dm(kontext: Harness) -> None:
    fake = kontext.fake
    general = fake.channel("general")
    await fake.set_bot_permissions(general, deny=Perm.ATTACH_FILES)
    alice = kontext.member("alice")
    _, ack = await kontext.edit("no files")
    job = await kontext.job(_job_id(ack.content))
    note = await fake.wait_for_message(
        job.thread_id or general.id, lambda m: "sent your result by DM" in m.content
    )
    assert "Attach Files" in note.content and not note.attachments
    dm_result = await kontext.result_in(fake.dm_channel(alice.user).id)
    assert dm_result.attachments and "no files" in dm_result.content


async def test_an_output_refused_by_the_safety_filter_fails_clearly(kontext: Harness) -> None:
    fake = kontext.fake
    kontext.provider.script("submit", Outcome.nsfw_flags(True))
    _, ack = await kontext.edit("something spicy")
    job = await kontext.job(_job_id(ack.content))
    assert job.status_message_id is not None
    status_id = job.status_message_id
    await fake.wait_for(lambda: "Failed" in fake.messages[status_id].content, what="failed")
    assert "safety filter" in fake.messages[status_id].content
    assert kontext.results(job.thread_id or job.channel_id) == []


async def test_too_many_images_for_the_guilds_provider(harness: Harness) -> None:
    async with ModelsLabFake(docs=docs_dir()) as modelslab:
        await harness.start(
            modelslab_api_key=modelslab.api_key, modelslab_base_url=modelslab.base_url
        )
        alice = harness.member("alice")
        saved = await (
            await alice.run_command(
                "kontext-admin settings", in_channel="general", provider="modelslab"
            )
        ).response()
        assert "Saved" in saved.content and "modelslab" in saved.content
        _, ack = await harness.edit(
            "three at once",
            image=png_file("a.png"),
            image2=png_file("b.png"),
            image3=png_file("c.png"),
        )
        assert "at most 2 images" in ack.content and "you gave 3" in ack.content
        assert modelslab.submits == 0 and harness.provider.submits == 0
        unknown = await (
            await alice.run_command("kontext-admin settings", in_channel="general", provider="nope")
        ).response()
        assert "Unknown provider" in unknown.content
        await harness.stop()


async def test_a_refusal_is_answered_exactly_once(kontext: Harness) -> None:
    alice = kontext.member("alice")
    post = await alice.send("general", "no picture here")
    handle = await alice.use_message_command("Edit image", post)
    await handle.response()
    # A later round trip: a second report of the same error would have arrived by now.
    await (await alice.run_command("kontext help", in_channel="general")).response()
    assert handle.followups == [] and handle.state.response_type == 4


async def test_reroll_of_an_imagine_result(kontext: Harness) -> None:
    handle = await kontext.member("alice").run_command(
        "imagine", in_channel="general", prompt="a red kite"
    )
    job = await kontext.job(_job_id((await handle.response()).content))
    thread_id = job.thread_id or job.channel_id
    first = await kontext.result_in(thread_id)
    again = await (await kontext.member("bob").click(first, "Reroll")).response()
    assert "Queued" in again.content
    await kontext.fake.wait_for(lambda: len(kontext.results(thread_id)) == 2, what="reroll")
    assert all("image_url" not in b for b in kontext.provider.bodies("submit"))


async def test_a_channel_the_bot_cannot_post_in_is_refused_up_front(kontext: Harness) -> None:
    general = kontext.fake.channel("general")
    await kontext.fake.set_bot_permissions(general, deny=Perm.SEND_MESSAGES)
    handle = await kontext.member("alice").run_command(
        "edit", in_channel=general, prompt="nowhere to post", image=png_file()
    )
    ack = await handle.response()
    assert "can't post in this channel" in ack.content and ack.flags & 64
    assert kontext.provider.submits == 0
    assert kontext.app is not None and await kontext.app.repo.list_jobs() == []


async def test_kontext_can_be_limited_to_one_channel(kontext: Harness) -> None:
    fake = kontext.fake
    alice = kontext.member("alice")
    images = fake.channel("images")
    saved = await (
        await alice.run_command(
            "kontext-admin settings", in_channel="general", allowed_channel=images
        )
    ).response()
    assert "Saved" in saved.content and f"<#{images.id}>" in saved.content
    _, refused = await kontext.edit("wrong place")
    assert "not enabled in this channel" in refused.content
    done = await kontext.edit_done("right place", channel="images")
    assert done.result.attachments
    cleared = await (
        await alice.run_command("kontext-admin settings", in_channel="images", clear_channels=True)
    ).response()
    assert "every channel" in cleared.content


async def test_a_vanished_thread_gets_the_result_in_its_channel(kontext: Harness) -> None:
    fake = kontext.fake
    fake.allow_violations(10003)  # Unknown Channel: the bot learns the thread is gone
    kontext.provider.script("submit", Outcome.stall())
    _, ack = await kontext.edit("thread will vanish")
    job = await kontext.job(_job_id(ack.content))
    assert job.thread_id is not None
    await fake.wait_for(lambda: kontext.provider.submits == 1, what="the submit")
    del fake.channels[job.thread_id]  # deleted without the bot being told
    kontext.provider.release()
    result = await kontext.result_in(job.channel_id)
    assert "thread was gone" in result.content and result.attachments


async def test_gateway_intents_default_plus_guild_messages(kontext: Harness) -> None:
    intents = kontext.fake.gateway.session.intents
    assert intents & Intent.GUILD_MESSAGES and intents & Intent.GUILDS
    assert not intents & Intent.PRIVILEGED


@pytest.mark.discord_fake(granted_intents=Intent.MESSAGE_CONTENT)
async def test_message_content_only_when_asked_for(harness: Harness) -> None:
    await harness.start(message_content=True)
    assert harness.fake.gateway.session.intents & Intent.MESSAGE_CONTENT


@pytest.mark.parametrize("policy", ["block", "spoiler"])
async def test_nsfw_flagged_outputs_are_withheld_outside_nsfw_channels(
    kontext: Harness, policy: str
) -> None:
    """Providers flag outputs one by one; the guild's policy decides (the fake has no
    age-restricted channels, so both policies withhold here, saying why)."""
    from bot.jobs.events import ResultImage
    from bot.models import OutputFormat

    app = kontext.app
    assert app is not None
    alice = kontext.member("alice")
    await (
        await alice.run_command("kontext-admin settings", in_channel="general", nsfw=policy)
    ).response()
    kontext.provider.script("submit", Outcome.stall())
    _, ack = await kontext.edit("two outputs, one flagged")
    job = await kontext.job(_job_id(ack.content))
    data = png_file().data
    images = []
    for index, nsfw in enumerate((False, True)):
        output = await app.repo.add_output(
            job.id,
            index=index,
            data=data,
            format=OutputFormat.PNG,
            width=64,
            height=48,
            nsfw=nsfw,
            now=job.created_at,
            retention_seconds=None,
        )
        images.append(ResultImage(output=output, data=data))
    await app.delivery.deliver(job, images)
    result = await kontext.result_in(job.thread_id or job.channel_id)
    assert len(result.attachments) == 1
    assert "flagged as NSFW" in result.content
    assert all(o.message_id == result.id for o in await app.repo.outputs_for_job(job.id))
    await (await alice.run_command("kontext cancel", in_channel="general", job=job.id)).response()
    kontext.provider.release()


async def test_kontext_limited_to_a_role_and_cleared_again(kontext: Harness) -> None:
    from bot.models import GuildSettings

    app = kontext.app
    assert app is not None
    guild_id = kontext.fake.guild.id
    await app.repo.save_guild_settings(
        GuildSettings(guild_id=guild_id, allowed_role_ids=(kontext.fake.ids.next(),)), now=0.0
    )
    _, refused = await kontext.edit("members without the role")
    assert "limited to certain roles" in refused.content
    alice = kontext.member("alice")
    await (
        await alice.run_command("kontext-admin settings", in_channel="general", clear_roles=True)
    ).response()
    await kontext.edit_done("everyone again")


async def test_kontext_queue_lists_the_servers_waiting_jobs(kontext: Harness) -> None:
    fake, provider = kontext.fake, kontext.provider
    provider.script("submit", Outcome.stall(), Outcome.stall())
    await kontext.edit("first", who="alice")
    await kontext.edit("second", who="bob")
    await fake.wait_for(lambda: provider.submits == 2, what="two running")  # concurrency 2
    _, ack = await kontext.edit("third", who="carol")
    waiting = _job_id(ack.content)
    queue = await (await kontext.member("alice").run_command("kontext queue")).response()
    assert "2 running, 1 waiting" in queue.content
    assert f"position 1 — job {waiting} by <@{fake.user('carol').id}>" in queue.content
    provider.release()


async def test_edit_image_menu_fetches_fresh_attachment_urls(kontext: Harness) -> None:
    fake = kontext.fake
    alice = kontext.member("alice")
    post = await alice.send("general", "old picture", files=[png_file("old.png")])
    opened = await alice.use_message_command("Edit image", post)
    assert await opened.acknowledged() == 9
    fake.clock.advance(2 * 86400)  # the URLs the menu saw have expired meanwhile
    ack = await (await alice.submit_modal({"What should change?": "still works"})).response()
    job = await kontext.job(_job_id(ack.content))
    result = await kontext.result_in(job.thread_id or job.channel_id)
    assert "still works" in result.content


async def test_a_job_whose_status_cannot_be_posted_is_withdrawn(
    kontext: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    import discord

    class Refusal:  # what discord.py reads off an aiohttp response
        status = 403
        reason = "Forbidden"

    async def refuse(*args: object, **kwargs: object) -> None:
        raise discord.Forbidden(Refusal(), {"code": 50013, "message": "Missing Permissions"})  # type: ignore[arg-type]

    app = kontext.app
    assert app is not None
    kontext.provider.script("submit", Outcome.stall())
    monkeypatch.setattr(app.delivery, "open_status", refuse)
    _, ack = await kontext.edit("cannot be shown")
    assert "missing a permission" in ack.content
    [job] = await app.repo.list_jobs()
    assert job.status.value == "cancelled"
    kontext.provider.release()
