"""What front ends hand the engine, and the small services the engine depends on."""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from pydantic import Field

from bot.errors import KontextError
from bot.models import (
    MAX_REFERENCES,
    NOT_FETCHED,
    Frozen,
    Job,
    JobOrigin,
    JobParams,
    OutputFormat,
    ReferenceSource,
)
from bot.providers.base import GenerationRequest, ReferenceImage

from .events import ResultImage


class ReferenceInput(Frozen):
    """A validated reference image (see ``bot.images.prepare_image``) and where it came from,
    or an attachment the worker will fetch and validate (:func:`attachment_to_fetch`)."""

    data: bytes = Field(repr=False)
    mime: str
    width: int = Field(ge=1)
    height: int = Field(ge=1)
    content_hash: str  # sha256 hex of ``data``; NOT_FETCHED for an attachment to fetch
    source: ReferenceSource
    url: str | None = None
    message_id: int | None = None
    attachment_id: int | None = None
    output_id: int | None = None

    @property
    def fetched(self) -> bool:
        return self.content_hash != NOT_FETCHED


def attachment_to_fetch(
    url: str,
    *,
    declared_type: str | None,
    width: int | None,
    height: int | None,
    message_id: int | None = None,
    attachment_id: int | None = None,
) -> ReferenceInput:
    """An attachment queued by what Discord says about it (no bytes yet): the worker
    downloads, decodes and stores it before the job reaches a provider."""
    return ReferenceInput(
        data=b"",
        mime=declared_type or "application/octet-stream",
        width=width or 1,
        height=height or 1,
        content_hash=NOT_FETCHED,
        source=ReferenceSource.ATTACHMENT,
        url=url,
        message_id=message_id,
        attachment_id=attachment_id,
    )


class AttachmentUnreadable(KontextError):
    """The chat service would not give us an attachment's bytes."""

    code = "attachment_unreadable"


@runtime_checkable
class AttachmentSource(Protocol):
    """Reads an attachment's bytes by its URL (Discord: the bot's own CDN session); raises
    AttachmentUnreadable. The engine's deliverer provides it where attachments are queued."""

    async def read_attachment(self, url: str) -> bytes: ...


class EditRequest(JobOrigin):
    """One edit (or text-to-image) request from any front end, as plain values."""

    provider: str | None = None  # None: the guild's setting, else the deployment default
    images: tuple[ReferenceInput, ...] = Field(default=(), max_length=MAX_REFERENCES)
    role_ids: tuple[int, ...] = ()  # the member's roles: the best role tier's limits apply

    def generation_request(self, params: JobParams) -> GenerationRequest:
        """What a provider is asked, with ``params`` (the request's, defaults filled in)."""
        references = tuple(
            ReferenceImage(
                data=img.data, mime=img.mime, width=img.width, height=img.height, url=img.url
            )
            for img in self.images
        )
        return generation_request(self.prompt, references, params)


def generation_request(
    prompt: str, references: tuple[ReferenceImage, ...], params: JobParams
) -> GenerationRequest:
    return GenerationRequest(
        prompt=prompt, references=references, **params.fields_for(GenerationRequest)
    )


class Deliverer(Protocol):
    """Posts a finished job's images. Must be idempotent per job: after a crash the engine
    may deliver the same job again (Discord: a message nonce from ``job.delivery_nonce``
    with ``enforce_nonce``)."""

    async def deliver(self, job: Job, images: Sequence[ResultImage]) -> None: ...


class OutputInfo(Frozen):
    format: OutputFormat
    width: int
    height: int
    data: bytes = Field(repr=False)  # re-encoded to PNG when the provider sent another format


class OutputValidator(Protocol):
    async def __call__(self, data: bytes) -> OutputInfo: ...


def _probe_sync(data: bytes) -> OutputInfo:
    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        fmt = (image.format or "").upper()
        width, height = image.size
        if fmt in ("PNG", "JPEG"):
            image.verify()
            return OutputInfo(
                format=OutputFormat(fmt.lower()), width=width, height=height, data=data
            )
        buffer = io.BytesIO()
        image.convert("RGBA" if "A" in image.getbands() else "RGB").save(buffer, "PNG")
        return OutputInfo(
            format=OutputFormat.PNG, width=width, height=height, data=buffer.getvalue()
        )


async def probe_output(data: bytes) -> OutputInfo:
    """Check that result bytes are a real image (in a thread: Pillow is blocking)."""
    import asyncio

    return await asyncio.to_thread(_probe_sync, data)


def sniff_mime(data: bytes) -> str:
    """The MIME type of stored reference bytes (they were validated before queueing)."""
    if data.startswith(b"\x89PNG"):
        return "image/png"
    if data.startswith(b"\xff\xd8"):
        return "image/jpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return "application/octet-stream"
