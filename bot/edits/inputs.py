"""What the edit service is given, and the one builder of the references a job is sent.

A front end reads an interaction or a message into a :class:`Requester` and
:class:`ImageInput` values; everything else here turns those (or a stored output) into
validated :class:`~bot.jobs.requests.ReferenceInput` values before anything is queued.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

from pydantic import BaseModel

from bot.errors import BadRequest
from bot.i18n import t
from bot.images import MAX_IMAGE_BYTES, ImageRejected, prepare_image
from bot.jobs.requests import ReferenceInput, sniff_mime
from bot.models import Job, JobKind, Output, Reference, ReferenceSource
from bot.providers.base import Capabilities

MAX_SEED = 2**31 - 1
ATTACHMENT = ReferenceSource.ATTACHMENT


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
    upload_limit: int | None = None  # the server's attachment upload limit (bytes), if known
    #: The server's locale (Discord's ``guild_locale``): the language of the public messages
    #: of a job queued here, unless the server pinned one.
    guild_locale: str | None = None

    def fields_for(self, target: type[BaseModel]) -> dict[str, Any]:
        """The values of this requester's fields that ``target`` declares too (for a request
        built on its behalf: guild, channel, thread, user, roles)."""
        return {
            f.name: getattr(self, f.name) for f in fields(self) if f.name in target.model_fields
        }


@dataclass(frozen=True)
class ImageInput:
    """An attachment as Discord describes it, and how to download its bytes.

    ``read`` is given by the front end (Discord: the attachment's own download, through the
    bot's session), so this service never deals with URLs it would have to vet.
    """

    url: str
    filename: str
    size: int
    read: Callable[[], Awaitable[bytes]] = field(repr=False)
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


async def read_images(
    images: Sequence[ImageInput], caps: Capabilities, *, first_number: int = 1
) -> tuple[ReferenceInput, ...]:
    """Validate attachments (declared size first, then real decoding) into references;
    ``first_number`` is how the first of them is named in a refusal ("Image 2 ...")."""
    for number, image in enumerate(images, first_number):
        if image.size > MAX_IMAGE_BYTES:
            raise BadRequest(
                t(
                    "errors.edit.image_too_large",
                    number=number,
                    filename=image.filename,
                    size=f"{image.size / 2**20:.1f}",
                    limit=MAX_IMAGE_BYTES // 2**20,
                )
            )

    async def one(number: int, image: ImageInput) -> ReferenceInput:
        data = await image.read()
        try:
            prepared = await prepare_image(data, max_side=caps.max_reference_side)
        except ImageRejected as err:
            raise ImageRejected(
                err.reason,
                t(
                    "errors.edit.image_rejected",
                    number=number,
                    filename=image.filename,
                    why=err.text,
                ),
            ) from err
        # A re-encoded image differs from the attachment: its link must not stand for it.
        origin = {"url": None if prepared.reencoded else image.url, "source": ATTACHMENT}
        ids = {"message_id": image.message_id, "attachment_id": image.attachment_id}
        return ReferenceInput(**prepared.model_dump(exclude={"reencoded"}), **origin, **ids)

    numbered = enumerate(images, first_number)
    return tuple(await asyncio.gather(*(one(n, image) for n, image in numbered)))


def check_count(caps: Capabilities, *, replied: int, attached: int) -> None:
    """Refuse more references than the provider takes, saying which images count."""
    most = caps.max_references
    if replied + attached <= most:
        return
    if not replied:
        raise BadRequest(
            t("errors.edit.count.attached", provider=caps.label, count=most, attached=attached)
        )
    room = most - replied
    words = {
        "provider": caps.label,
        "count": most,
        "room": room,
        "replied": replied,
        "attached": attached,
    }
    if attached and room > 0 and replied == 1:
        message = t("errors.edit.count.reply_plus", **words)
    elif attached and room > 0:
        message = t("errors.edit.count.replies_plus", **words)
    elif attached:
        message = t("errors.edit.count.replies_fill", **words)
    else:
        message = t("errors.edit.count.message_has", **words)
    raise BadRequest(message)


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
