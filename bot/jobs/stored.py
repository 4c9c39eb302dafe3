"""Jobs as stored and read back: the saved provider result and the provider request."""

from __future__ import annotations

import asyncio
import base64
import io
import json

from bot.errors import KontextError
from bot.i18n import t
from bot.models import Job, JobKind
from bot.providers.base import Finished, GenerationRequest, OutputImage, ReferenceImage
from storage.sql import Repository

from .requests import generation_request, sniff_mime


def encode_finished(result: Finished) -> str:
    """A provider result as stored in ``result_json`` (bytes inline, base64)."""
    return json.dumps(
        {
            "outputs": [
                {
                    "url": item.url,
                    "data": base64.b64encode(item.data).decode() if item.data else None,
                    "nsfw": item.nsfw,
                    "index": item.index,
                }
                for item in result.outputs
            ],
            "seed": result.seed,
            "credits": result.credits,
            "handle": result.handle,
        }
    )


def decode_finished(text: str) -> Finished:
    raw = json.loads(text)
    outputs = tuple(
        OutputImage(
            url=item.get("url"),
            data=base64.b64decode(item["data"]) if item.get("data") else None,
            nsfw=bool(item.get("nsfw")),
            index=item.get("index"),
        )
        for item in raw.get("outputs", ())
    )
    return Finished(
        outputs=outputs, seed=raw.get("seed"), credits=raw.get("credits"), handle=raw.get("handle")
    )


async def build_request(repo: Repository, job: Job) -> GenerationRequest:
    """The provider request of a stored job, references read back from their blobs."""
    references: list[ReferenceImage] = []
    if job.kind is not JobKind.IMAGINE:
        for ref in sorted(await repo.get_references(job.id), key=lambda r: r.position):
            data = await repo.get_blob(ref.content_hash)
            if data is None:
                raise KontextError(t("errors.job.reference_gone"))
            width, height = ref.width, ref.height
            if width is None or height is None:
                info = await asyncio.to_thread(_size_of, data)
                width, height = info
            references.append(
                ReferenceImage(
                    data=data, mime=sniff_mime(data), width=width, height=height, url=ref.url
                )
            )
    return generation_request(job.prompt, tuple(references), job.params)


def _size_of(data: bytes) -> tuple[int, int]:
    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        return image.size
