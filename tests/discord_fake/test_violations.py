"""Each request real Discord would reject is answered like Discord and recorded."""

from __future__ import annotations

import aiohttp
import discord
import pytest

from .actors import png_file
from .models import Perm
from .plugin import assert_no_unexpected_violations
from .server import FakeDiscord
from .testbot import FakeTestBot


async def _bot_error(fake: FakeDiscord, bot: FakeTestBot) -> discord.HTTPException:
    error = await fake.wait_for(lambda: bot.errors and bot.errors[-1], what="the bot's error")
    assert isinstance(error, discord.HTTPException), error
    return error


async def test_six_buttons_in_a_row(fake_discord: FakeDiscord, bot: FakeTestBot) -> None:
    await fake_discord.member("alice").run_command("bad", kind="six-buttons")
    violation = await fake_discord.wait_for_violation(50035)
    assert violation.status == 400
    errors = violation.errors or {}
    assert "components" in errors
    assert (await _bot_error(fake_discord, bot)).code == 50035
    assert all(m.content != "six" for m in fake_discord.bot_messages("general"))


async def test_content_over_2000_characters(fake_discord: FakeDiscord, bot: FakeTestBot) -> None:
    handle = await fake_discord.member("alice").run_command("bad", kind="long")
    violation = await fake_discord.wait_for_violation(50035)
    errors = violation.errors or {}
    assert errors["data"]["content"]["_errors"][0]["code"] == "BASE_TYPE_MAX_LENGTH"
    assert (await _bot_error(fake_discord, bot)).code == 50035
    assert not handle.state.acknowledged


async def test_acknowledging_after_three_seconds(
    fake_discord: FakeDiscord, bot: FakeTestBot
) -> None:
    handle = await fake_discord.member("alice").run_command("bad", kind="late")
    fake_discord.clock.advance(3.5)
    bot.gate.set()
    violation = await fake_discord.wait_for_violation(10062)
    assert violation.status == 404 and "after 3.5" in violation.detail
    assert isinstance(await _bot_error(fake_discord, bot), discord.NotFound)
    assert not handle.state.acknowledged


async def test_second_acknowledgement(fake_discord: FakeDiscord, bot: FakeTestBot) -> None:
    handle = await fake_discord.member("alice").run_command("bad", kind="twice")
    violation = await fake_discord.wait_for_violation(40060)
    assert violation.status == 400
    assert (await _bot_error(fake_discord, bot)).code == 40060
    assert (await handle.response()).content == "first"


async def test_file_over_the_attachment_size_limit(
    fake_discord: FakeDiscord, bot: FakeTestBot
) -> None:
    await fake_discord.member("alice").run_command("bad", kind="big-file")
    violation = await fake_discord.wait_for_violation(40005)
    assert violation.status == 413 and "big.png" in violation.detail
    assert (await _bot_error(fake_discord, bot)).status == 413


async def test_follow_up_after_the_token_expired(
    fake_discord: FakeDiscord, bot: FakeTestBot
) -> None:
    handle = await fake_discord.member("alice").run_command("bad", kind="expired")
    await handle.acknowledged()
    fake_discord.clock.advance(15 * 60 + 1)
    bot.gate.set()
    violation = await fake_discord.wait_for_violation(50027)
    assert violation.status == 401
    assert (await _bot_error(fake_discord, bot)).code == 50027


async def test_thread_without_create_public_threads(
    fake_discord: FakeDiscord, bot: FakeTestBot
) -> None:
    general = fake_discord.channel("general")
    await fake_discord.set_bot_permissions(general, deny=Perm.CREATE_PUBLIC_THREADS)
    channel = bot.get_channel(general.id)
    me = bot.guilds[0].me
    assert isinstance(channel, discord.TextChannel) and me is not None
    # CHANNEL_UPDATE told discord.py, so the bot could have checked before trying
    await fake_discord.wait_for(lambda: not channel.permissions_for(me).create_public_threads)
    handle = await fake_discord.member("alice").run_command("edit", prompt="p", image=png_file())
    await handle.response()  # the follow-up itself needs no channel permission
    violation = await fake_discord.wait_for_violation(50013)
    assert violation.status == 403 and "thread" in violation.detail
    assert isinstance(await _bot_error(fake_discord, bot), discord.Forbidden)
    assert not fake_discord.threads_of(general)


async def test_file_without_attach_files(fake_discord: FakeDiscord, bot: FakeTestBot) -> None:
    general = fake_discord.channel("general")
    await fake_discord.set_bot_permissions(general, deny=Perm.ATTACH_FILES)
    await fake_discord.member("alice").run_command("bad", kind="attach")
    violation = await fake_discord.wait_for_violation(50013)
    assert violation.status == 403
    assert isinstance(await _bot_error(fake_discord, bot), discord.Forbidden)
    assert not fake_discord.bot_messages(general)


async def test_unexpected_violations_fail_the_test(fake_discord: FakeDiscord) -> None:
    from .wire import Violation

    fake_discord.violations.append(Violation("POST", "/x", 400, 50035, "Invalid Form Body"))
    with pytest.raises(pytest.fail.Exception, match="real Discord would reject"):
        assert_no_unexpected_violations(fake_discord)
    fake_discord.allow_violations(50035)
    assert_no_unexpected_violations(fake_discord)
    assert len(fake_discord.pop_violations()) == 1


async def test_more_than_ten_files(fake_discord: FakeDiscord) -> None:
    channel = fake_discord.channel("general")
    form = aiohttp.FormData(quote_fields=False)
    form.add_field("payload_json", '{"content": "eleven"}', content_type="application/json")
    for i in range(11):
        form.add_field(f"files[{i}]", b"x", filename=f"{i}.txt")
    url = f"{fake_discord.api_base}/channels/{channel.id}/messages"
    headers = {"Authorization": f"Bot {fake_discord.token}"}
    async with (
        aiohttp.ClientSession(headers=headers) as session,
        session.post(url, data=form) as response,
    ):
        assert response.status == 400
    (violation,) = fake_discord.pop_violations()
    assert violation.code == 50035 and violation.errors and "files" in violation.errors


async def test_autocomplete_answers_beyond_discords_limits(fake_discord: FakeDiscord) -> None:
    channel = fake_discord.channel("general")
    data = {"id": "1", "name": "x", "type": 1, "options": []}
    handle = await fake_discord.member("alice")._interact(4, data, channel)
    state = handle.state
    url = f"{fake_discord.api_base}/interactions/{state.id}/{state.token}/callback"
    choices = [{"name": f"c{i}", "value": "v" * (101 if i == 0 else 1)} for i in range(26)]
    choices[1]["name"] = ""
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, json={"type": 8, "data": {"choices": choices}}) as response,
    ):
        assert response.status == 400
    (violation,) = fake_discord.pop_violations()
    errors = (violation.errors or {})["data"]["choices"]
    assert {"_errors", "0", "1"} <= set(map(str, errors))
    assert state.choices is None
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, json={"type": 8, "data": {"choices": choices[2:27]}}) as response,
    ):
        assert response.status == 204
    assert state.choices == choices[2:27]
