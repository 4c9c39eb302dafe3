"""/edit end to end: the real bot (built by bot.app) on the fake Discord with the AIML fake."""

from __future__ import annotations

import re

from tests.bot.conftest import Harness
from tests.discord_fake import FileUpload, png_file
from tests.fakes import Outcome


async def test_edit_posts_status_thread_and_result(kontext: Harness) -> None:
    fake = kontext.fake
    alice = kontext.member("alice")
    done = await kontext.edit_done("make it blue @everyone <@&123>")
    thread = fake.channels[done.thread_id]
    assert thread.is_thread and done.thread_id == done.status.id
    assert thread.parent_id == fake.channel("general").id
    result = done.result
    assert len(result.attachments) == 1
    assert "make it blue" in result.content
    assert "AIML API" in result.content and "seed" in result.content
    assert "flux/kontext-max/image-to-image" in result.content
    # The echoed prompt cannot ping or look like a mention; only the requester is mentioned.
    assert "@everyone" not in result.content.replace("@\u200beveryone", "")
    assert [int(m["id"]) for m in result.payload["mentions"]] == [alice.user.id]
    labels = [c.get("label") for row in result.components for c in row["components"]]
    assert labels == ["Reroll", "Edit", "Info", "Delete", "History"]  # History on every result
    status = await fake.wait_for(
        lambda: "Done" in fake.messages[done.status.id].content and fake.messages[done.status.id],
        what="status done",
    )
    assert not status.components  # no Cancel button once finished
    job = await kontext.job(done.job_id)
    assert job.status.value == "done"


async def test_status_shows_queue_position_then_editing(kontext: Harness) -> None:
    fake = kontext.fake
    kontext.provider.script("submit", Outcome.stall())
    _, ack = await kontext.edit("slow one")
    job_id = int(re.findall(r"job (\d+)", ack.content)[0])
    job = await kontext.job(job_id)
    assert job.status_message_id is not None
    status_id = job.status_message_id
    await fake.wait_for(
        lambda: "Editing" in fake.messages[status_id].content, what="status editing"
    )
    assert "kx:cancel:" in str(fake.messages[status_id].components)
    await fake.wait_for(lambda: kontext.provider.submits == 1, what="the submit")
    kontext.provider.release()
    await fake.wait_for(lambda: "Done" in fake.messages[status_id].content, what="done")


async def test_not_an_image_is_refused_and_nothing_queued(kontext: Harness) -> None:
    text = FileUpload("notes.png", b"just some text, not a picture", "image/png")
    _, ack = await kontext.edit(image=text)
    assert "Image 1 (notes.png)" in ack.content
    assert ack.flags & 64  # ephemeral
    assert kontext.provider.submits == 0
    assert kontext.app is not None
    assert await kontext.app.repo.list_jobs() == []
    assert len(kontext.fake.bot_messages("general")) == 0


async def test_too_large_image_is_refused_before_download(kontext: Harness) -> None:
    big = png_file("big.png")
    big = FileUpload("big.png", big.data + b"\0" * (26 * 1024 * 1024), "image/png")
    _, ack = await kontext.edit(image=big)
    assert "26.0 MiB" in ack.content and "limit is 25 MiB" in ack.content
    assert kontext.fake.cdn_fetches if hasattr(kontext.fake, "cdn_fetches") else True
    assert kontext.provider.submits == 0


async def test_blank_prompt_is_refused(kontext: Harness) -> None:
    _, ack = await kontext.edit("   ")
    assert "prompt is empty" in ack.content
    assert kontext.provider.submits == 0


async def test_limit_reached_is_refused_with_the_reason(kontext: Harness) -> None:
    kontext.provider.script("submit", Outcome.stall(), Outcome.stall(), Outcome.stall())
    alice = kontext.member("alice")
    settings = await alice.run_command("kontext-admin settings", in_channel="general", per_user=1)
    assert "Saved" in (await settings.response()).content
    _first, ack = await kontext.edit("first")
    assert "Queued" in ack.content
    _, refused = await kontext.edit("second")
    assert "Queued" not in refused.content
    assert "1" in refused.content
    assert kontext.app is not None
    assert len(await kontext.app.repo.list_jobs()) == 1
    kontext.provider.release()


async def test_slow_job_is_delivered_after_the_interaction_token_expired(
    kontext: Harness,
) -> None:
    fake = kontext.fake
    kontext.provider.script("submit", Outcome.stall())
    _, ack = await kontext.edit("very slow")
    job_id = int(re.findall(r"job (\d+)", ack.content)[0])
    job = await kontext.job(job_id)
    await fake.wait_for(lambda: kontext.provider.submits == 1, what="the submit")
    fake.clock.advance(16 * 60)  # every interaction token is dead now
    kontext.provider.release()
    result = await kontext.result_in(job.thread_id or job.channel_id)
    assert result.attachments
    # Posted with the bot token, not through the dead interaction webhook.
    assert result.interaction_id is None if hasattr(result, "interaction_id") else True


async def test_edit_inside_a_thread_uses_that_thread(kontext: Harness) -> None:
    fake = kontext.fake
    general = fake.channel("general")
    alice = kontext.member("alice")
    thread = fake.add_thread(general, "my thread", owner=alice.user)
    handle = await alice.run_command(
        "edit", in_channel=thread, prompt="in a thread", image=png_file()
    )
    ack = await handle.response()
    job = await kontext.job(int(re.findall(r"job (\d+)", ack.content)[0]))
    assert job.thread_id == thread.id and job.channel_id == thread.id
    result = await kontext.result_in(thread.id)
    assert "in a thread" in result.content
    assert fake.threads_of(general) == [thread]  # no second thread was made


async def test_edit_with_several_images(kontext: Harness) -> None:
    images = {
        "image": png_file("a.png", color="red"),
        "image2": png_file("b.png", color="green"),
        "image3": png_file("c.png", color="blue"),
    }
    done = await kontext.edit_done("combine these", **images)
    assert done.result.attachments
    body = kontext.provider.bodies("submit")[0]
    assert len(body["image_url"]) == 3


async def test_prompt_over_4000_characters_is_refused(kontext: Harness) -> None:
    _, ack = await kontext.edit("x" * 4001)
    assert "4001 characters long; the limit is 4000" in ack.content
    assert kontext.provider.submits == 0


async def test_daily_quota_is_refused_with_when_it_frees(kontext: Harness) -> None:
    alice = kontext.member("alice")
    await (
        await alice.run_command("kontext-admin settings", in_channel="general", daily_quota=1)
    ).response()
    await kontext.edit_done("first today")
    _, refused = await kontext.edit("second today")
    assert "Queued" not in refused.content and "quota" in refused.content.lower()


async def test_an_output_over_the_upload_limit_is_reencoded(kontext: Harness) -> None:
    kontext.fake.attachment_size_limit = 3_000  # the fake's 1024 px PNGs are about 4 KB
    done = await kontext.edit_done("too big to upload")
    [attachment] = done.result.attachments
    assert attachment["size"] <= 3_000
    assert "Re-encoded to fit" in done.result.content


CREATIVE = ["count", "style", "guidance", "safety_tolerance", "output_format", "provider"]


async def test_the_commands_people_type(kontext: Harness) -> None:
    fake = kontext.fake
    commands = {c["name"]: c for c in fake.guild_commands[fake.guild.id]}
    assert fake.global_commands == []  # KONTEXT_DEV_GUILD_ID set: guild commands only
    options = {o["name"]: o for o in commands["edit"]["options"]}
    assert list(options) == [
        "prompt",
        "image",
        "image2",
        "image3",
        "image4",
        "aspect_ratio",
        "seed",
        *CREATIVE,
    ]
    assert options["count"]["min_value"] == 1 and options["count"]["max_value"] == 4
    assert options["style"]["autocomplete"] and options["style"]["max_length"] == 32
    assert options["guidance"]["type"] == 10 and options["guidance"]["max_value"] == 20
    assert options["prompt"]["max_length"] == 4000 and options["prompt"]["required"]
    assert options["image"]["type"] == 11 and options["image"]["required"]
    assert [c["value"] for c in options["aspect_ratio"]["choices"]] == [
        "21:9",
        "16:9",
        "4:3",
        "3:2",
        "1:1",
        "2:3",
        "3:4",
        "9:16",
        "9:21",
    ]
    assert options["seed"]["min_value"] == 1
    imagine = [o["name"] for o in commands["imagine"]["options"]]
    assert imagine == ["prompt", "aspect_ratio", "seed", *CREATIVE]
    assert commands["Edit image"]["type"] == 3
    subs = [o["name"] for o in commands["kontext"]["options"]]
    assert sorted(subs) == ["cancel", "forget-me", "help", "history", "prefs", "queue", "usage"]
    admin = [o["name"] for o in commands["kontext-admin"]["options"]]
    assert sorted(admin) == [
        "blocklist",
        "creative",
        "modlog",
        "remix",
        "resume",
        "settings",
        "style",
        "tier",
    ]


async def test_a_provider_outage_ends_in_a_clear_failure(harness: Harness) -> None:
    from bot.jobs.limits import JobRetryPolicy
    from tests.fakes import Outcome

    await harness.start(engine={"retry": JobRetryPolicy(base_delay=0.0, max_delay=0.0)})
    fake = harness.fake
    harness.provider.set_default("submit", Outcome.http(503, "upstream down"))
    _, ack = await harness.edit("during an outage")
    job = await harness.job(int(re.findall(r"job (\d+)", ack.content)[0]))
    assert job.status_message_id is not None
    status_id = job.status_message_id
    await fake.wait_for(lambda: "Failed" in fake.messages[status_id].content, what="failure")
    # A 503 answer to a submit is not sent again (it may have been billed); the provider's
    # own words follow ours.
    content = fake.messages[status_id].content
    assert "did not make the image" in content and 'said: "upstream down"' in content
    assert harness.provider.submits == 1
    assert not fake.messages[status_id].components
    assert harness.results(job.thread_id or job.channel_id) == []


async def test_discord_rate_limits_are_waited_out(kontext: Harness) -> None:
    fake = kontext.fake
    fake.rate_limit("POST", "/channels/{channel_id}/messages", retry_after=0.05, times=2)
    fake.rate_limit(
        "PATCH", "/channels/{channel_id}/messages/{message_id}", retry_after=0.05, times=2
    )
    done = await kontext.edit_done("despite 429s")
    assert len(kontext.results(done.thread_id)) == 1
    assert len(fake.rate_limited) == 4
