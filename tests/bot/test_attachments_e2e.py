"""Attachments are queued by what Discord says about them and read by the worker.

The gateway refuses at once only what the attachment's metadata rules out (too many bytes or
pixels, not declared an image) and otherwise queues without downloading; the worker
downloads and decodes the image before the provider. An image it cannot use ends the job as
failed (``bad_image``) with the reason in the status message: nothing reaches the provider
and nothing is counted. Checked with ``kontext-bot run`` (SQLite) and with a gateway and a
worker app on one PostgreSQL database.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import pytest

from bot.app import App, open_app
from bot.images import MAX_IMAGE_PIXELS
from bot.jobs.attachments import BAD_IMAGE
from bot.models import NOT_FETCHED, JobStatus
from tests import pg
from tests.bot.conftest import Harness
from tests.discord_fake import FileUpload, png_file
from tests.imagecorpus import make_header_only_png, make_raw_png

NOT_AN_IMAGE = FileUpload("notes.png", b"just some text, not a picture", "image/png")
#: Discord gives no dimensions for a file it cannot read, so the gateway lets these pass.
HUGE = FileUpload("huge.png", make_header_only_png(9_000, 9_000), "image/png")
CUT = FileUpload("cut.png", make_raw_png(64, 48, rows_written=3), "image/png")


def _job_id(text: str) -> int:
    assert "Queued as job" in text, text
    return int(text.split("job ")[1].split(".")[0])


# --- kontext-bot run ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("upload", "said"),
    [
        (NOT_AN_IMAGE, "isn't an image I can read"),
        (HUGE, "81.0 megapixels"),
        (CUT, "incomplete"),
    ],
)
async def test_an_image_the_worker_cannot_use_fails_the_job_clearly(
    kontext: Harness, upload: FileUpload, said: str
) -> None:
    fake = kontext.fake
    _, ack = await kontext.edit(image=upload)
    job_id = _job_id(ack.content)  # queued at once: nothing was downloaded yet
    job = await kontext.job(job_id)
    assert job.status_message_id is not None
    status_id = job.status_message_id
    status = await fake.wait_for(
        lambda: "Failed" in fake.messages[status_id].content and fake.messages[status_id],
        what="the status to say Failed",
    )
    assert f"Image 1 ({upload.filename})" in status.content and said in status.content
    assert "Nothing was sent" in status.content
    assert not status.components  # no Cancel button once it ended
    job = await kontext.job(job_id)
    assert job.status is JobStatus.FAILED and job.error_code == BAD_IMAGE
    assert kontext.provider.submits == 0
    assert kontext.app is not None
    usage = await kontext.app.repo.usage(guild_id=fake.guild.id, since_day="1970-01-01")
    assert usage == []
    # Nothing was counted: the next /edit of the member goes through under a quota of one.
    member = kontext.member("alice")
    settings = await member.run_command(
        "kontext-admin settings", in_channel="general", daily_quota=1
    )
    assert "Saved" in (await settings.response()).content
    done = await kontext.edit_done("a good one")
    assert (await kontext.job(done.job_id)).status is JobStatus.DONE


@pytest.mark.parametrize(
    ("upload", "said"),
    [
        (FileUpload("clip.mp4", b"\0\0\0\x18ftypmp42", "video/mp4"), "Discord says it is video"),
        (
            FileUpload("wide.png", png_file().data, "image/png", width=10_000, height=5_000),
            f"50.0 megapixels; the limit is {MAX_IMAGE_PIXELS / 1_000_000:g}",
        ),
    ],
)
async def test_what_the_metadata_rules_out_is_refused_at_once(
    kontext: Harness, upload: FileUpload, said: str
) -> None:
    _, ack = await kontext.edit(image=upload)
    assert f"Image 1 ({upload.filename})" in ack.content and said in ack.content
    assert ack.flags & 64  # ephemeral
    assert kontext.app is not None
    assert await kontext.app.repo.list_jobs() == []
    assert len(kontext.fake.bot_messages("general")) == 0
    assert not kontext.fake.cdn_fetches if hasattr(kontext.fake, "cdn_fetches") else True


async def test_a_valid_image_is_stored_by_the_worker_before_the_provider(
    kontext: Harness,
) -> None:
    done = await kontext.edit_done("blue", image=png_file(width=80, height=60))
    assert kontext.app is not None
    refs = await kontext.app.repo.get_references(done.job_id)
    assert len(refs) == 1 and refs[0].content_hash != NOT_FETCHED
    assert (refs[0].width, refs[0].height) == (80, 60)
    assert await kontext.app.repo.get_blob(refs[0].content_hash) is not None
    assert kontext.provider.submits == 1


# --- a gateway and a worker -----------------------------------------------------------------


@contextlib.asynccontextmanager
async def _gateway_and_worker(harness: Harness, url: str) -> AsyncIterator[tuple[App, App]]:
    """A ``gateway`` app connected to the fake and a ``worker`` app logged in over REST."""
    settings = harness.settings(database_url=url)
    async with contextlib.AsyncExitStack() as stack:
        gateway = await stack.enter_async_context(
            open_app(settings, guild_ready_timeout=0.05, role="gateway")
        )
        await stack.enter_async_context(harness.fake.running(gateway.bot))
        worker = await stack.enter_async_context(open_app(settings, role="worker"))
        await worker.bot.login(harness.fake.token)
        yield gateway, worker


async def test_gateway_queues_and_the_worker_refuses_or_runs(harness: Harness) -> None:
    reason = await pg.unreachable_reason()
    if reason is not None:
        if pg.postgres_required():
            pytest.fail(reason)
        pytest.skip(reason)
    fake = harness.fake
    url = await pg.create_temp_database()
    try:
        async with _gateway_and_worker(harness, url) as (gateway, _worker):
            _, bad = await harness.edit(image=NOT_AN_IMAGE)
            bad_id = _job_id(bad.content)
            job = await gateway.repo.get_job(bad_id)
            assert job is not None and job.status_message_id is not None
            status_id = job.status_message_id
            status = await fake.wait_for(
                lambda: "Failed" in fake.messages[status_id].content and fake.messages[status_id],
                what="the worker's refusal in the status message",
            )
            assert "Image 1 (notes.png)" in status.content
            job = await gateway.repo.get_job(bad_id)
            assert job is not None and job.error_code == BAD_IMAGE
            assert harness.provider.submits == 0
            _, good = await harness.edit("make it green", image=png_file(width=80, height=60))
            good_id = _job_id(good.content)
            job = await gateway.repo.get_job(good_id)
            assert job is not None
            result = await harness.result_in(job.thread_id or job.channel_id, timeout=30)
            assert len(result.attachments) == 1
            refs = await gateway.repo.get_references(good_id)
            assert refs[0].fetched and (refs[0].width, refs[0].height) == (80, 60)
            assert harness.provider.submits == 1
    finally:
        await pg.drop_database(url)


async def test_the_workers_refusal_speaks_the_servers_language(harness: Harness) -> None:
    harness.fake.guild.locale = "de"
    await harness.start()
    fake = harness.fake
    _, ack = await harness.edit(image=CUT)
    job = await harness.job(_job_id(ack.content))
    assert job.status_message_id is not None
    status_id = job.status_message_id
    status = await fake.wait_for(
        lambda: "Bild 1 (cut.png)" in fake.messages[status_id].content and fake.messages[status_id],
        what="the refusal in German",
    )
    assert "unvollständig" in status.content and "Bilddienst" in status.content
    assert (await harness.job(job.id)).error_code == BAD_IMAGE
