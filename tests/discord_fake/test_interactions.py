"""Actors drive the self-test bot through interactions, exactly as Discord would."""

from __future__ import annotations

from .actors import png_file
from .conftest import StartBot
from .interactions import DEFERRED_MESSAGE, DEFERRED_UPDATE, MESSAGE, MODAL, UPDATE_MESSAGE
from .server import FakeDiscord
from .testbot import FakeTestBot


async def test_commands_are_synced_globally_and_per_guild(
    fake_discord: FakeDiscord, bot: FakeTestBot
) -> None:
    assert {c["name"] for c in fake_discord.global_commands} == {
        "ping",
        "edit",
        "steps",
        "bad",
        "job",
        "Wave",
        "Remix",
    }
    guild_commands = fake_discord.guild_commands[fake_discord.guild.id]
    assert [c["name"] for c in guild_commands] == ["status"]
    assert fake_discord.requests_to("PUT", "/applications/{application_id}/commands")
    assert fake_discord.requests_to(
        "PUT", "/applications/{application_id}/guilds/{guild_id}/commands"
    )
    assert fake_discord.requests_to("GET", "/users/@me")


async def test_slash_command_with_attachment_defers_uploads_and_threads(
    fake_discord: FakeDiscord, bot: FakeTestBot
) -> None:
    alice = fake_discord.member("alice")
    image = png_file("cat.png")
    handle = await alice.run_command("edit", prompt="make it blue", image=image, strength=7)
    assert await handle.acknowledged() == DEFERRED_MESSAGE
    result = await handle.response()
    assert result.content == f"{alice.mention} make it blue (strength 7)"
    assert [m["id"] for m in result.payload["mentions"]] == [str(alice.user.id)]
    assert result.attachments[0]["filename"] == "result.png"
    assert fake_discord.cdn.get(int(result.attachments[0]["id"])).data == image.data
    assert bot.downloads == [image.data]  # the bot fetched the option's CDN URL
    # the thread hangs off the result message (a thread's id is its starter message's id)
    thread = await fake_discord.wait_for(lambda: fake_discord.channels.get(result.id))
    assert thread.is_thread and thread.name == "edit: make it blue"
    details = await fake_discord.wait_for_message(thread)
    assert details.content == "details in the thread"
    command = handle.state.payload
    assert command["attachment_size_limit"] == 10 * 1024 * 1024
    options = command["data"]["resolved"]["attachments"]
    assert next(iter(options.values()))["url"].startswith(fake_discord.base_url + "/attachments/")


async def test_guild_command_and_ephemeral_reply(
    fake_discord: FakeDiscord, bot: FakeTestBot
) -> None:
    handle = await fake_discord.member("bob").run_command("status", in_channel="images")
    message = await handle.response()
    assert message.content == "all good" and message.ephemeral
    assert message.channel_id == fake_discord.channel("images").id
    assert message not in fake_discord.messages_in(fake_discord.channel("images"))


async def test_context_menu_opens_a_modal_that_is_submitted(
    fake_discord: FakeDiscord, bot: FakeTestBot
) -> None:
    bob = fake_discord.member("bob")
    source = await bob.send("images", "my picture", files=[png_file()])
    handle = await bob.use_message_command("Remix", source)
    assert await handle.acknowledged() == MODAL
    modal = await handle.modal()
    assert modal["title"] == "Remix"
    submitted = await bob.submit_modal({"New prompt": "as a watercolour"})
    assert await submitted.acknowledged() == MESSAGE
    reply = await submitted.response()
    assert reply.content == f"remix of {source.id}: as a watercolour"
    context = handle.state.payload["data"]
    assert context["type"] == 3 and context["target_id"] == str(source.id)
    assert str(source.id) in context["resolved"]["messages"]


async def test_persistent_buttons_survive_a_restart(
    fake_discord: FakeDiscord, start_bot: StartBot
) -> None:
    carol = fake_discord.member("carol")
    first = await start_bot()
    pong = await (await carol.run_command("ping")).response()
    assert pong.content == "pong"
    await first.close()
    await start_bot()  # a new process: only the DynamicItem templates know the buttons
    click = await carol.click(pong, "Retry")
    assert await click.acknowledged() == UPDATE_MESSAGE
    await fake_discord.wait_for(lambda: pong.content.startswith("retrying"))
    assert pong.content == "retrying job 7"
    quiet = await carol.click(pong, "quiet:7")
    assert await quiet.acknowledged() == DEFERRED_UPDATE
    await fake_discord.wait_for(lambda: pong.content == "quietly updated 7")
    assert pong.payload["edited_timestamp"] is not None


async def test_webhook_routes_edit_original_follow_ups_and_delete(
    fake_discord: FakeDiscord, bot: FakeTestBot
) -> None:
    handle = await fake_discord.member("alice").run_command("steps")
    await fake_discord.wait_for(lambda: (o := handle.original) and o.content.startswith("done"))
    original = handle.original
    assert original is not None
    assert original.content == f"done {original.id}"
    assert fake_discord.cdn.get(int(original.attachments[0]["id"])).data == b"one"
    second, secret, doomed = handle.followups
    assert second.content == "step 2 edited" and second.attachments[0]["filename"] == "two.txt"
    assert secret.ephemeral and secret not in fake_discord.messages_in(second.channel_id)
    assert doomed.deleted
    templates = [
        r.template for r in fake_discord.requests if (r.template or "").startswith("/webhooks")
    ]
    assert templates == [
        "/webhooks/{webhook_id}/{webhook_token}/messages/@original",  # PATCH step 1
        "/webhooks/{webhook_id}/{webhook_token}/messages/@original",  # GET original
        "/webhooks/{webhook_id}/{webhook_token}",
        "/webhooks/{webhook_id}/{webhook_token}/messages/{message_id}",  # PATCH step 2
        "/webhooks/{webhook_id}/{webhook_token}",
        "/webhooks/{webhook_id}/{webhook_token}",
        "/webhooks/{webhook_id}/{webhook_token}/messages/{message_id}",  # DELETE
        "/webhooks/{webhook_id}/{webhook_token}/messages/@original",
    ]
    multipart = fake_discord.requests_to("POST", "/webhooks/{webhook_id}/{webhook_token}")[0]
    assert [f.filename for f in multipart.files] == ["two.txt"]


async def test_user_context_menu(fake_discord: FakeDiscord, bot: FakeTestBot) -> None:
    handle = await fake_discord.member("alice").use_user_command("Wave", fake_discord.member("bob"))
    assert (await handle.response()).content == "waves at bob"


async def test_subcommand_with_user_and_channel_options(
    fake_discord: FakeDiscord, bot: FakeTestBot
) -> None:
    bob = fake_discord.member("bob")
    images = fake_discord.channel("images")
    handle = await fake_discord.member("alice").run_command(
        "job status", job_id=3, owner=bob, where=images
    )
    assert (await handle.response()).content == "job 3 of bob in images"
    data = handle.state.payload["data"]
    assert data["options"][0]["type"] == 1 and data["options"][0]["name"] == "status"
    assert set(data["resolved"]) == {"users", "members", "channels"}
