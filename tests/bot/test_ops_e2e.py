"""Operating the bot on the fake Discord: operator alerts and resuming, the pause in the
status message, /kontext-admin, caps from settings, forget-me, erased data, command sync,
servers joined and left, and REST 429s counted."""

from __future__ import annotations

import asyncio
import time
from typing import Any, cast

import pytest

from bot.cli import main
from bot.discord import client as client_module
from tests.bot.conftest import Harness, harness, kontext, provider  # noqa: F401 - fixtures
from tests.bot.iterating import answer_to, reply
from tests.discord_fake import png_file
from tests.discord_fake.models import Perm
from tests.discord_fake.plugin import discord_spec, fake_discord  # noqa: F401
from tests.fakes import env_for
from tests.fakes.server import Outcome

MANAGE_GUILD = 1 << 5
ALERT = "is paused for every server"


def _alerts(h: Harness, channel_id: int) -> list[str]:
    return [m.content for m in h.fake.bot_messages(channel_id) if ALERT in m.content]


async def test_a_revoked_key_pauses_tells_the_operator_once_and_resume_resumes(
    harness: Harness,  # noqa: F811
) -> None:
    fake = harness.fake
    alerts = fake.channel("images")
    app = await harness.start(alert_channel_id=alerts.id)
    await harness.edit_done("before")
    good_key = harness.provider.api_key
    harness.provider.api_key = "revoked-at-the-provider"

    _, ack = await harness.edit("while the key is dead")
    job_id = int(ack.content.split("job ")[1].split(".")[0])
    job = await harness.job(job_id)
    assert job.status_message_id is not None
    status = fake.messages[job.status_message_id]
    await fake.wait_for(lambda: "Paused" in status.content, what="the status to say Paused")
    assert "operator has been told" in status.content
    assert "API\\_KEY" not in status.content  # the operator's details stay with them

    owner = fake.users[fake.guild.owner_id]
    dm = fake.dm_channel(owner)
    await fake.wait_for(lambda: _alerts(harness, dm.id), what="the DM to the owner")
    await fake.wait_for(lambda: _alerts(harness, alerts.id), what="the alert channel post")
    _, second = await harness.edit("another one", who="bob")
    assert "Queued as job" in second.content
    await fake.wait_for(
        lambda: app.engine.running() == 0 and harness.provider.submits == 2,
        what="the jobs waiting",
    )
    (text,) = _alerts(harness, dm.id)
    assert _alerts(harness, alerts.id) == [text]
    assert "AIMLAPI\\_API\\_KEY" in text and good_key not in text  # escaped Markdown
    assert "/kontext-admin resume provider:aimlapi" in text

    refused = await harness.member("bob").run_command("kontext-admin resume", provider="aimlapi")
    assert "only the bot's operators" in (await refused.response()).content
    assert await app.repo.provider_pauses()

    harness.provider.api_key = good_key
    resumed = await harness.member("alice").run_command("kontext-admin resume", provider="aimlapi")
    assert "is resumed" in (await resumed.response()).content
    await fake.wait_for(lambda: "Done" in status.content, what="the paused job to run")
    assert await app.repo.provider_pauses() == []
    assert len(_alerts(harness, dm.id)) == 1 and len(_alerts(harness, alerts.id)) == 1


async def test_every_command_is_guild_only_and_admin_needs_manage_server(
    kontext: Harness,  # noqa: F811
) -> None:
    registered = kontext.fake.guild_commands[kontext.fake.guild.id]
    by_name = {c["name"]: c for c in registered}
    assert {"edit", "imagine", "kontext", "kontext-admin", "Edit image"} <= by_name.keys()
    for command in registered:
        assert command.get("contexts") == [0], command["name"]
        assert command.get("dm_permission") is False, command["name"]
    admin = by_name["kontext-admin"]
    assert int(admin["default_member_permissions"]) == MANAGE_GUILD
    assert {o["name"] for o in admin["options"]} == {
        "settings",
        "remix",
        "resume",
        "style",
        "blocklist",
        "tier",
        "creative",
        "modlog",
    }
    assert by_name["kontext"]["default_member_permissions"] is None


async def test_running_and_queue_caps_changed_from_settings_are_enforced(
    kontext: Harness,  # noqa: F811
) -> None:
    alice = kontext.member("alice")
    saved = await alice.run_command(
        "kontext-admin settings", running=1, queue_length=1, daily_credit_cap=2.5
    )
    text = (await saved.response()).content
    assert "running at once: 1" in text and "queue length: 1" in text
    assert "daily credit cap for the server: 2.5" in text
    settings = await kontext.app.edits.guild_settings(kontext.fake.guild.id)  # type: ignore[union-attr]
    assert (settings.max_guild_running, settings.max_guild_queue) == (1, 1)
    assert settings.daily_credit_cap == 2.5

    kontext.provider.script("submit", Outcome.stall())
    await kontext.edit("first", who="alice")
    await kontext.fake.wait_for(lambda: kontext.provider.submits == 1, what="the first job")
    _, second = await kontext.edit("second", who="bob")
    assert "Queued as job" in second.content
    _, third = await kontext.edit("third", who="carol")
    assert "queue is full (1 edits waiting)" in third.content
    assert kontext.provider.submits == 1  # one running at once: the second waits
    kontext.provider.release()
    await kontext.fake.wait_for(lambda: kontext.provider.submits == 2, what="the second job")


async def test_forget_me_asks_first_and_only_the_member_may_confirm(
    kontext: Harness,  # noqa: F811
) -> None:
    delivered = await kontext.edit_done("my secret prompt", who="alice")
    alice, bob = kontext.member("alice"), kontext.member("bob")
    asked = await alice.run_command("kontext forget-me", in_channel="general")
    question = await asked.response()
    assert "cannot be undone" in question.content
    assert (await kontext.job(delivered.job_id)).prompt == "my secret prompt"

    forged = await bob.forge_click(question, f"kx:forget:{alice.user.id}")
    assert "Only the member who asked" in (await forged.response()).content
    assert (await kontext.job(delivered.job_id)).prompt == "my secret prompt"

    pressed = await alice.click(question, "Erase my data")
    done = await pressed.response()
    assert "erased the prompts of 1 job(s)" in done.content
    assert (await kontext.job(delivered.job_id)).erased

    for button in ("Reroll", "History", "Edit"):
        pressed = await alice.click(delivered.result, button)
        assert "were deleted" in (await pressed.response()).content, button
    assert kontext.provider.submits == 1  # nothing queued with an empty prompt


async def test_a_reply_to_a_purged_output_says_the_data_was_deleted(
    kontext: Harness,  # noqa: F811
) -> None:
    delivered = await kontext.edit_done("old")
    app = kontext.app
    assert app is not None
    later = time.time() + 400 * 86_400
    await app.repo.retire_before(cutoff=later, now=later)
    await app.repo.purge_expired(now=later)
    asked = await reply(kontext, "bob", delivered.result, "make it red")
    answer = await answer_to(kontext, asked)
    assert "were deleted" in answer.content and "`/edit`" in answer.content
    assert kontext.provider.submits == 1


async def test_commands_are_registered_only_when_they_changed(
    harness: Harness,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    route = ("PUT", "/applications/{application_id}/guilds/{guild_id}/commands")
    await harness.start()
    assert len(harness.fake.requests_to(*route)) == 1
    await harness.restart()
    assert len(harness.fake.requests_to(*route)) == 1  # the same tree: nothing sent

    # A version without the history feature: its commands are gone from the tree.
    without = tuple(n for n in client_module.EXTENSIONS if n != "cogs.history")
    monkeypatch.setattr(client_module, "EXTENSIONS", without)
    await harness.restart()
    assert len(harness.fake.requests_to(*route)) == 2
    assert "Edit history" not in {
        c["name"] for c in harness.fake.guild_commands[harness.fake.guild.id]
    }
    await harness.restart()
    assert len(harness.fake.requests_to(*route)) == 2


async def test_servers_left_and_joined_reach_the_lifecycle(
    kontext: Harness,  # noqa: F811
) -> None:
    await kontext.edit_done("kept")
    guild_id = kontext.fake.guild.id
    await kontext.fake.gateway.dispatch("GUILD_DELETE", {"id": str(guild_id)})
    await _departed_becomes(kontext, [guild_id])
    payload = kontext.fake.guild_create_payload(kontext.fake.guild)
    await kontext.fake.gateway.dispatch("GUILD_CREATE", payload)
    await _departed_becomes(kontext, [])


async def _departed_becomes(h: Harness, expected: list[int]) -> None:
    """Wait until the servers counted as left are ``expected`` (the listeners run as tasks)."""
    assert h.app is not None
    for _ in range(200):
        if await h.app.repo.departed_guilds(left_before=time.time() + 60) == expected:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"departed servers never became {expected}")


async def test_rest_429s_are_counted_and_shards_reported(
    kontext: Harness,  # noqa: F811
) -> None:
    app = kontext.app
    assert app is not None
    assert app.ops.health.shards is not None and app.ops.health.shards() == {0: True}
    before = app.ops.metrics.rest_429._value.get()
    kontext.fake.rate_limit("POST", "/channels/{channel_id}/messages", retry_after=0.05)
    await kontext.edit_done("after a 429", image=png_file())
    assert app.ops.metrics.rest_429._value.get() == before + 1

    cog = app.bot.get_cog("OpsCog")
    assert cog is not None
    cast(Any, cog).record_latency()  # what the loop does every 30 s (loaded by name: no type)
    latency = app.ops.metrics.gateway_latency_seconds.labels(shard="0")._value.get()
    assert latency == app.bot.latency and latency >= 0


def _cli_env(h: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    env = {
        **env_for(h.provider),
        "DISCORD_TOKEN": h.fake.token,
        "DISCORD_API_BASE": h.fake.api_base,
        "DISCORD_GATEWAY_URL": h.fake.gateway_url,
        "KONTEXT_DATABASE_URL": f"sqlite:///{h.db}",
        "KONTEXT_DEV_GUILD_ID": str(h.fake.guild.id),
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)


async def _doctor(capsys: pytest.CaptureFixture[str]) -> dict[str, str]:
    await asyncio.to_thread(main, ["doctor"])
    lines = capsys.readouterr().out.splitlines()
    return {line[5:].split(":")[0]: line for line in lines}


async def test_doctor_checks_the_commands_and_the_channel_permissions_and_sync_fixes(
    harness: Harness,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    fake = harness.fake
    await harness.start()
    added = await harness.member("alice").run_command(
        "kontext-admin remix add", channel=fake.channel("images")
    )
    assert "is a remix channel now" in (await added.response()).content
    await harness.edit_done("some data for this server")
    await harness.stop()
    _cli_env(harness, monkeypatch)

    lines = await _doctor(capsys)
    assert lines["registered commands"].startswith("OK  "), lines
    permissions = f"permissions in server {fake.guild.id}"
    assert lines[permissions].startswith("OK  "), lines

    await fake.set_bot_permissions(fake.channel("images"), deny=Perm.ATTACH_FILES)
    without = tuple(n for n in client_module.EXTENSIONS if n != "cogs.history")
    monkeypatch.setattr(client_module, "EXTENSIONS", without)
    lines = await _doctor(capsys)
    assert lines["registered commands"].startswith("FAIL"), lines
    assert "run `kontext-bot sync`" in lines["registered commands"]
    assert lines[permissions].startswith("FAIL")
    assert "#images (remix channel) lacks Attach Files" in lines[permissions]
    assert "Edit Channel → Permissions" in lines[permissions]

    route = ("PUT", "/applications/{application_id}/guilds/{guild_id}/commands")
    before = len(fake.requests_to(*route))
    assert await asyncio.to_thread(main, ["sync"]) == 0
    assert capsys.readouterr().out.startswith("registered ")
    assert len(fake.requests_to(*route)) == before + 1
    lines = await _doctor(capsys)
    assert lines["registered commands"].startswith("OK  "), lines
