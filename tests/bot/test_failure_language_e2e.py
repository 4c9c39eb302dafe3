"""A failed job's reason is shown in the server's language on Discord (the status message,
a batch's notes), worded from what the engine stored."""

from __future__ import annotations

import re
from pathlib import Path

from bot.jobs.limits import JobRetryPolicy
from tests.bot.conftest import Harness
from tests.discord_fake import FakeDiscord
from tests.fakes import FAKES, Outcome, docs_dir


async def test_a_japanese_servers_failure_reason_is_japanese(harness: Harness) -> None:
    harness.fake.guild.locale = "ja"
    await harness.start(engine={"retry": JobRetryPolicy(base_delay=0.0, max_delay=0.0)})
    fake = harness.fake
    harness.provider.set_default("submit", Outcome.http(503, "upstream down"))
    _, ack = await harness.edit("during an outage")
    job = await harness.job(int(re.findall(r"\d+", ack.content)[0]))
    assert job.status_message_id is not None
    status_id = job.status_message_id
    await fake.wait_for(
        lambda: "upstream down" in fake.messages[status_id].content, what="the failure"
    )
    content = fake.messages[status_id].content
    assert "画像は作られませんでした" in content and "「upstream down」" in content
    assert "did not make the image" not in content


async def test_a_german_servers_batch_note_is_german(
    fake_discord: FakeDiscord, tmp_path: Path
) -> None:
    fake_discord.guild.locale = "de"
    async with FAKES["wavespeed"](docs=docs_dir()) as wavespeed:
        wavespeed.script(
            "submit",
            Outcome.success(),
            Outcome.http(400, "The input could not be processed"),
            Outcome.success(),
        )
        h = Harness(fake_discord, wavespeed, tmp_path / "kontext.db")  # type: ignore[arg-type]
        await h.start()
        try:
            _, ack = await h.edit("make it blue", count=3)
            job = await h.job(int(re.findall(r"\d+", ack.content)[0]))
            result = await h.result_in(job.thread_id or job.channel_id)
            assert "Bild 2 von 3 ist fehlgeschlagen" in result.content
            assert "konnte diese Anfrage nicht verwenden" in result.content
        finally:
            await h.stop()
