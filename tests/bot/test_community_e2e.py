"""The moderation log and "ping when done", end to end on the fake Discord: what a log entry
says and links, that it pings nobody, that it never holds delivery back, that a worker (REST
only, no gateway cache) writes it, and whom a result pings (member > server > on)."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from bot.app import open_app
from bot.discord.modlog import ModLog
from bot.jobs.limits import JobRetryPolicy
from tests.bot.conftest import Harness
from tests.discord_fake.models import Perm, StoredMessage
from tests.discord_fake.wire import RequestRecord
from tests.fakes import Outcome

POST = ("POST", "/channels/{channel_id}/messages")
EVIL = "make @everyone a <@1> **cat** `x` > quote"


async def _run(h: Harness, who: str, command: str, **options: Any) -> StoredMessage:
    handle = await h.member(who).run_command(command, in_channel="general", **options)
    return await handle.response()


def _modlog(h: Harness) -> ModLog:
    assert h.app is not None
    return h.app.delivery.modlog


def _posts_in(h: Harness, channel_id: int) -> list[RequestRecord]:
    return [r for r in h.fake.requests_to(*POST) if r.path == f"/channels/{channel_id}/messages"]


def _post_of(h: Harness, message_id: int) -> RequestRecord:
    """The recorded request that created message ``message_id``."""
    found = [
        r
        for r in h.fake.requests_to(*POST)
        if isinstance(r.response, dict) and r.response.get("id") == str(message_id)
    ]
    assert len(found) == 1, found
    return found[0]


def _pinged(record: RequestRecord) -> list[int]:
    """Whom a message's allowed_mentions lets it ping (users only; nothing else is allowed)."""
    allowed = record.body["allowed_mentions"]
    assert not allowed.get("parse") and not allowed.get("roles"), allowed
    assert not allowed.get("replied_user"), allowed
    return [int(u) for u in allowed.get("users") or []]


async def test_a_finished_job_is_logged_with_links_and_thumbnails(kontext: Harness) -> None:
    fake = kontext.fake
    log_channel = fake.channel("images")
    denied = await _run(kontext, "bob", "kontext-admin modlog", channel=log_channel)
    assert "Manage Server" in denied.content
    saved = await _run(kontext, "alice", "kontext-admin modlog", channel=log_channel)
    assert f"Moderation log: <#{log_channel.id}>" in saved.content
    assert "cannot post" not in saved.content
    shown = await _run(kontext, "alice", "kontext-admin settings")
    assert f"moderation log: <#{log_channel.id}>" in shown.content

    done = await kontext.edit_done(EVIL, who="bob", count=2, style="night")
    await _modlog(kontext).settle()
    [record] = _posts_in(kontext, log_channel.id)
    body = record.body
    bob = fake.user("bob").id
    assert _pinged(record) == []  # the entry names bob and pings nobody
    content = body["content"]
    assert "**Finished** · `edit` · job" in content and f"job {done.job_id}" in content
    assert f"**Asked by:** <@{bob}> in <#{fake.channel('general').id}>" in content
    assert "**Style:** night" in content and "**Service:** AIML API" in content
    link = f"https://discord.com/channels/{fake.guild.id}/{done.thread_id}/{done.result.id}"
    assert f"**Result:** {link}" in content
    job = await kontext.job(done.job_id)
    description = body["embeds"][0]["description"]
    assert "@everyone" not in description and "<@1>" not in description
    assert "\\*\\*cat\\*\\*" in description and "\\`x\\`" in description
    assert description.replace("\\", "").replace("\u200b", "") == " ".join(job.prompt.split())
    thumbnails = [e["thumbnail"]["url"] for e in body["embeds"]]
    attachments = [str(a["id"]) for a in done.result.payload["attachments"]]
    assert len(thumbnails) == len(attachments) == 2
    for url, attachment_id in zip(thumbnails, attachments, strict=True):
        assert attachment_id in url
    assert not record.files  # thumbnails point at the result: nothing uploaded twice


async def test_a_blocked_prompt_is_logged_with_its_rule(kontext: Harness) -> None:
    fake = kontext.fake
    log_channel = fake.channel("images")
    await _run(kontext, "alice", "kontext-admin modlog", channel=log_channel)
    await _run(kontext, "alice", "kontext-admin blocklist add", text="zebra")
    await _run(kontext, "alice", "kontext-admin blocklist add", text=r"uni\w+", pattern=True)

    _, ack = await kontext.edit("draw a Zebra <@&5>", who="bob")
    assert "does not allow some of the words" in ack.content
    assert "zebra" not in ack.content.lower()  # the member is not told the rule
    _, ack = await kontext.edit("a unicorn", who="carol")
    assert "does not allow" in ack.content
    await _modlog(kontext).settle()
    records = _posts_in(kontext, log_channel.id)
    assert len(records) == 2 and kontext.provider.submits == 0
    word, pattern = (r.body for r in records)
    assert all(_pinged(r) == [] for r in records)
    assert "**Refused by the blocklist** · `edit`" in word["content"]
    assert f"<@{fake.user('bob').id}>" in word["content"]
    assert "**Matched:** the word or phrase zebra" in word["content"]
    assert word["embeds"][0]["description"] == "draw a Zebra <\u200b@\u200b&5>"
    assert "**Matched:** the pattern uni\\\\w+" in pattern["content"]
    assert f"<@{fake.user('carol').id}>" in pattern["content"]


async def test_nothing_is_logged_without_a_channel(kontext: Harness) -> None:
    await kontext.edit_done("a quiet edit")
    await _run(kontext, "alice", "kontext-admin blocklist add", text="zebra")
    await kontext.edit("a zebra", who="bob")
    await _modlog(kontext).settle()
    assert not any("embeds" in r.body for r in kontext.fake.requests_to(*POST))
    shown = await _run(kontext, "alice", "kontext-admin settings")
    assert "moderation log: off" in shown.content


async def test_turning_the_log_off(kontext: Harness) -> None:
    log_channel = kontext.fake.channel("images")
    await _run(kontext, "alice", "kontext-admin modlog", channel=log_channel)
    off = await _run(kontext, "alice", "kontext-admin modlog")
    assert "The moderation log is off" in off.content
    await kontext.edit_done("after the log")
    await _modlog(kontext).settle()
    assert not _posts_in(kontext, log_channel.id)


async def test_a_failed_job_is_logged_briefly(harness: Harness) -> None:
    await harness.start(engine={"retry": JobRetryPolicy(base_delay=0.0, max_delay=0.0)})
    log_channel = harness.fake.channel("images")
    await _run(harness, "alice", "kontext-admin modlog", channel=log_channel)
    harness.provider.set_default("submit", Outcome.http(503, "upstream down"))
    _, ack = await harness.edit("during an outage", who="bob")
    assert "Queued as job" in ack.content
    await harness.fake.wait_for(lambda: _posts_in(harness, log_channel.id), what="the entry")
    [record] = _posts_in(harness, log_channel.id)
    assert "**Failed** (failed) · `edit`" in record.body["content"]
    assert "upstream down" in record.body["content"] and _pinged(record) == []
    assert record.body["embeds"][0]["description"] == "during an outage"


async def test_a_deleted_log_channel_does_not_stop_delivery(
    kontext: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    fake = kontext.fake
    fake.allow_violations(10003)  # Unknown Channel: the log channel is gone
    log_channel = fake.channel("images")
    await _run(kontext, "alice", "kontext-admin modlog", channel=log_channel)
    del fake.channels[log_channel.id]  # deleted without the bot being told
    with caplog.at_level(logging.WARNING, logger="bot.discord.modlog"):
        done = await kontext.edit_done("still delivered", who="bob")
        await _modlog(kontext).settle()
    assert done.result.attachments and (await kontext.job(done.job_id)).status == "done"
    assert any(f"cannot post in channel {log_channel.id}" in r.getMessage() for r in caplog.records)


async def test_a_log_channel_without_permission_is_reported_and_skipped(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    fake = harness.fake
    fake.allow_violations(50013)  # Missing Permissions
    log_channel = fake.channel("images")
    log_channel.overwrites[fake.bot_user.id] = (1, 0, Perm.SEND_MESSAGES)
    await harness.start()
    saved = await _run(harness, "alice", "kontext-admin modlog", channel=log_channel)
    assert "I cannot post there yet: I need Send Messages" in saved.content
    with caplog.at_level(logging.WARNING, logger="bot.discord.modlog"):
        done = await harness.edit_done("still delivered")
        await _modlog(harness).settle()
    assert done.result.attachments
    assert any("HTTP 403" in r.getMessage() for r in caplog.records)
    assert not fake.bot_messages(log_channel)


async def test_a_worker_logs_through_rest_alone(kontext: Harness) -> None:
    """A worker has no gateway cache: it finds the channel by the id stored in the database."""
    fake = kontext.fake
    log_channel = fake.channel("images")
    await _run(kontext, "alice", "kontext-admin modlog", channel=log_channel)
    done = await kontext.edit_done("made by a worker", who="bob")
    await _modlog(kontext).settle()
    before = len(_posts_in(kontext, log_channel.id))
    job = await kontext.job(done.job_id)
    await kontext.stop()

    settings = kontext.settings()
    async with open_app(settings, role="worker", serve=False, sync_commands=False) as worker:
        await worker.bot.login(fake.token)  # REST only: no gateway, no cache
        assert worker.bot.get_channel(log_channel.id) is None
        partial = worker.bot.get_partial_messageable(done.thread_id)
        message = await partial.fetch_message(done.result.id)
        worker.delivery.modlog.job_finished(job, message)
        worker.delivery.modlog.job_failed(job, "a reason")
        await worker.delivery.modlog.settle()
    records = _posts_in(kontext, log_channel.id)[before:]
    assert len(records) == 2
    finished, failed = (r.body["content"] for r in records)
    assert f"/{done.thread_id}/{done.result.id}" in finished and "**Failed**" in failed
    assert all(_pinged(r) == [] for r in records)
    assert records[0].body["embeds"][0]["thumbnail"]["url"]


async def test_ping_when_done_follows_member_then_server_then_on(kontext: Harness) -> None:
    fake = kontext.fake
    bob, carol = fake.user("bob").id, fake.user("carol").id

    default = await kontext.edit_done("pinged by default", who="bob")
    assert _pinged(_post_of(kontext, default.result.id)) == [bob]

    saved = await _run(kontext, "bob", "kontext prefs set", ping=False)
    assert "Ping when done: off" in saved.content
    quiet = await kontext.edit_done("not pinged", who="bob")
    record = _post_of(kontext, quiet.result.id)
    assert _pinged(record) == [] and f"<@{bob}>" in record.body["content"]
    assert (await kontext.job(quiet.job_id)).params.origins["ping_when_done"] == "member"

    shown = await _run(kontext, "alice", "kontext-admin creative", ping_when_done=False)
    assert "Ping when done: off" in shown.content
    server = await kontext.edit_done("the server says no", who="carol")
    assert _pinged(_post_of(kontext, server.result.id)) == []
    assert (await kontext.job(server.job_id)).params.origins["ping_when_done"] == "server"

    await _run(kontext, "bob", "kontext prefs set", ping=True)
    member = await kontext.edit_done("the member says yes", who="bob")
    assert _pinged(_post_of(kontext, member.result.id)) == [bob]

    # A reroll pings whoever rerolls, by their own choice (carol: the server's "off").
    known = {m.id for m in fake.messages.values()}
    handle = await fake.member("carol").click(member.result, "Reroll")
    await handle.acknowledged()
    rerolled = await fake.wait_for(
        lambda: next(
            (
                m
                for m in list(fake.messages.values())
                if m.id not in known and "kx:reroll:" in str(m.components)
            ),
            None,
        ),
        what="the reroll's result",
    )
    assert _pinged(_post_of(kontext, rerolled.id)) == []
    assert f"<@{carol}>" in rerolled.content

    cleared = await _run(kontext, "bob", "kontext prefs clear", which="ping_when_done")
    assert "Ping when done: —" in cleared.content
