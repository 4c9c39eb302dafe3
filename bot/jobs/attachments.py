"""The worker's half of an attachment: download it, decode it, store it, before the provider.

A front end queues an attachment by what the chat service says about it (its link, declared
type, size and dimensions: cheap checks only, so the gateway answers at once and decodes
nothing). Before the job's first submit the worker reads the bytes through the deliverer
(an :class:`~bot.jobs.requests.AttachmentSource`), judges and normalises them with
:func:`bot.images.prepare_image` (in a thread), stores them and records them on the
reference. An image it refuses ends the job as ``failed`` with ``bad_image`` (the refusal
says which image, what is wrong and what to do); one it cannot download ends it with
``attachment_unreadable``. Either happens before anything is sent to a provider, and a failed
job counts against no quota and costs nothing. A worker that stops half-way fetches only the
references still waiting when the job resumes.
"""

from __future__ import annotations

import logging
from urllib.parse import unquote, urlsplit

from bot.i18n import Text, t
from bot.images import ImageRejected, prepare_image
from bot.models import Job, JobStatus, Reference
from bot.providers.base import Capabilities

from .context import RunContext, end_job
from .requests import AttachmentSource, AttachmentUnreadable

log = logging.getLogger(__name__)

#: Stable codes stored in ``Job.error_code`` when an attachment stops the job.
BAD_IMAGE = "bad_image"
ATTACHMENT_UNREADABLE = "attachment_unreadable"


def _reason(text: Text) -> Text:
    """A refusal of the worker, saying that nothing was sent or counted."""
    return t("errors.edit.nothing_sent", reason=text)


def file_name(url: str | None) -> Text | str:
    """The file name at the end of an attachment's link (how a refusal names the image)."""
    name = unquote(urlsplit(url).path.rsplit("/", 1)[-1]) if url else ""
    return name or t("errors.edit.unnamed_attachment")


async def fetch_attachments(ctx: RunContext, job: Job, caps: Capabilities) -> Job | None:
    """``job`` once every reference's bytes are stored; ``None`` if it ended here (an image
    refused or unreadable: failed and announced) or changed under us."""
    waiting = [r for r in await ctx.repo.get_references(job.id) if not r.fetched]
    if not waiting:
        return job
    source = ctx.deliverer if isinstance(ctx.deliverer, AttachmentSource) else None
    for ref in waiting:
        number = ref.position + 1
        try:
            if source is None or ref.url is None:
                raise AttachmentUnreadable("unavailable")  # no link, or no way to read it here
            data = await source.read_attachment(ref.url)
            prepared = await prepare_image(data, max_side=caps.max_reference_side)
        except ImageRejected as err:
            log.info("job %d: image %d refused (%s)", job.id, number, err.reason)
            named = {"number": number, "filename": file_name(ref.url)}
            reason = _reason(t("errors.edit.image_rejected", **named, why=err.text))
            return await end_job(ctx, job, JobStatus.FAILED, BAD_IMAGE, reason)
        except AttachmentUnreadable as err:
            log.warning("job %d: image %d unreadable: %s", job.id, number, err.user_message)
            text = t(
                "discord.error.attachment_unreadable", filename=file_name(ref.url), status=err.text
            )
            reason = _reason(text)
            return await end_job(ctx, job, JobStatus.FAILED, ATTACHMENT_UNREADABLE, reason)
        await _store(ctx, ref, prepared.data, prepared.width, prepared.height, prepared.reencoded)
    return job


async def _store(
    ctx: RunContext, ref: Reference, data: bytes, width: int, height: int, reencoded: bool
) -> None:
    content_hash = await ctx.repo.put_blob(data, now=ctx.clock.now())
    # A re-encoded image differs from the attachment: its link must not stand for it.
    await ctx.repo.set_reference_image(
        ref.job_id,
        ref.position,
        content_hash=content_hash,
        width=width,
        height=height,
        url=None if reencoded else ref.url,
    )
