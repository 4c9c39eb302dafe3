"""What the edit service is given, and the one builder of the references a job is sent.

A front end reads an interaction or a message into a :class:`Requester` and
:class:`ImageInput` values; everything else here turns those (or a stored output) into
:class:`~bot.jobs.requests.ReferenceInput` values before anything is queued: stored outputs
with their kept bytes, attachments by their metadata (the worker fetches and decodes them).
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from bot.errors import BadRequest
from bot.images import MAX_IMAGE_BYTES, MAX_IMAGE_PIXELS
from bot.jobs.requests import ReferenceInput, attachment_to_fetch, sniff_mime
from bot.models import Job, JobKind, Output, Reference, ReferenceSource
from bot.providers.base import Capabilities

MAX_SEED = 2**31 - 1


@dataclass(frozen=True)
class Requester:
    """Who asks, and where: read off an interaction or a message by the front end."""

    guild_id: int  # 0 in DMs
    channel_id: int  # where the command ran (a thread, if it ran in one)
    user_id: int
    parent_channel_id: int | None = None  # the thread's parent channel
    thread_id: int | None = None  # set when the command ran inside a thread
    role_ids: tuple[int, ...] = ()
    moderator: bool = False  # Manage Messages in the channel
    manage_guild: bool = False


@dataclass(frozen=True)
class ImageInput:
    """An attachment as Discord describes it: its link, name, size, declared type and
    dimensions. Its bytes are read, decoded and checked by the worker before the provider
    (:mod:`bot.jobs.attachments`), so a request is queued without downloading anything."""

    url: str
    filename: str
    size: int
    content_type: str | None = None
    width: int | None = None
    height: int | None = None
    message_id: int | None = None
    attachment_id: int | None = None


def random_seed() -> int:
    return secrets.randbelow(MAX_SEED) + 1


#: What a kept image's record says about where it came from, copied into a new reference.
_ORIGIN = {"content_hash", "message_id", "attachment_id"}


def from_output(output: Output, data: bytes) -> ReferenceInput:
    """A stored output (its kept ``data``) as the reference of a new job."""
    origin = output.model_dump(include=_ORIGIN | {"width", "height"})
    return ReferenceInput(
        data=data,
        mime=sniff_mime(data),
        source=ReferenceSource.OUTPUT,
        output_id=output.id,
        **origin,
    )


def from_reference(ref: Reference, data: bytes) -> ReferenceInput:
    """A stored reference of an earlier job (its kept ``data``), sent again (Reroll)."""
    origin = ref.model_dump(include=_ORIGIN | {"source", "output_id"})
    size = {"width": ref.width or 1, "height": ref.height or 1}
    return ReferenceInput(data=data, mime=sniff_mime(data), **size, **origin)


def declare_images(
    images: Sequence[ImageInput], *, first_number: int = 1
) -> tuple[ReferenceInput, ...]:
    """Attachments as references by what Discord says about them, refused at once when that
    already rules them out (too many bytes or pixels, not declared an image); the worker
    downloads and decodes them. ``first_number`` is how the first of them is named in a
    refusal ("Image 2 ...")."""
    refs = []
    for number, image in enumerate(images, first_number):
        named = f"Image {number} ({image.filename})"
        if image.size > MAX_IMAGE_BYTES:
            raise BadRequest(
                f"{named} is {image.size / 2**20:.1f} MiB; the limit is "
                f"{MAX_IMAGE_BYTES // 2**20} MiB. Attach a smaller image."
            )
        kind = (image.content_type or "").split(";")[0].strip().lower()
        if kind and not kind.startswith("image/"):
            raise BadRequest(
                f"{named} is not an image (Discord says it is {kind}). "
                "Attach a PNG, JPEG or WebP image."
            )
        pixels = (image.width or 0) * (image.height or 0)
        if pixels > MAX_IMAGE_PIXELS:
            raise BadRequest(
                f"{named} is {pixels / 1_000_000:.1f} megapixels; the limit is "
                f"{MAX_IMAGE_PIXELS / 1_000_000:g}. Downscale it and try again."
            )
        refs.append(
            attachment_to_fetch(
                image.url,
                declared_type=kind or None,
                width=image.width,
                height=image.height,
                message_id=image.message_id,
                attachment_id=image.attachment_id,
            )
        )
    return tuple(refs)


def check_count(caps: Capabilities, *, replied: int, attached: int) -> None:
    """Refuse more references than the provider takes, saying which images count."""
    most = caps.max_references
    if replied + attached <= most:
        return
    plural = "s" if most > 1 else ""
    if not replied:
        raise BadRequest(
            f"{caps.label} takes at most {most} image{plural} per edit and you gave "
            f"{attached}. Remove some, or ask an admin to switch provider in "
            "`/kontext-admin settings`."
        )
    if attached:
        room = most - replied
        detail = (
            f"the image{'s' if replied > 1 else ''} you replied to ({replied}) plus "
            f"{attached} attached; attach at most {room}"
            if room > 0
            else f"the {replied} images you replied to already fill that; attach none"
        )
    else:
        detail = f"this message has {replied}; post fewer"
    raise BadRequest(f"{caps.label} takes at most {most} image{plural} per edit: {detail}.")


def provider_label(capabilities: Mapping[str, Capabilities], name: str) -> str:
    """The provider's human name (its id when it is not configured here)."""
    caps = capabilities.get(name)
    return caps.label if caps else name


def provider_and_model(
    capabilities: Mapping[str, Capabilities], job: Job
) -> tuple[str, str | None]:
    """The provider's human name and the model that served ``job`` (the guild's choice, else
    the provider's model for the kind of request)."""
    caps = capabilities.get(job.provider)
    if caps is None:
        return job.provider, job.model
    if job.model:
        return caps.label, job.model
    return caps.label, caps.text_model if job.kind is JobKind.IMAGINE else caps.edit_model


def result_seed(job: Job) -> int | None:
    """The seed the provider reports having used, else the one asked for."""
    if job.result_json:
        try:
            seed = json.loads(job.result_json).get("seed")
        except (ValueError, AttributeError):
            seed = None
        if isinstance(seed, int):
            return seed
    return job.params.seed
