"""AIML API: ``flux/kontext-max`` image-to-image (1–4 references) and text-to-image.

Synchronous: ``POST /v1/images/generations`` answers with the finished images, so
:meth:`AimlApiProvider.submit` returns :class:`~bot.providers.base.Finished`.

Decisions:

* ``aspect_ratio`` is always sent (the API defaults to 16:9 even for edits): the chosen ratio,
  else the one closest to the first reference.
* ``image_url`` is ``format: uri``. A reference's public URL is sent when it has one; local
  bytes go as a ``data:`` URI. Whether the API accepts data URIs is undocumented (public URLs
  are the documented way), so front ends should prefer references with a public URL.
* Both documented answer shapes are read: ``images: [{url}], seed, has_nsfw_concepts`` and
  ``data: [{url, b64_json}], meta.usage.credits_used``.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from bot.providers.base import Capabilities, Finished, GenerationRequest, OutputImage, Submitted
from bot.providers.common import (
    HttpProvider,
    bool_flags,
    finish,
    inline_reference,
    put_given,
    to_int,
)
from bot.providers.http import MAX_JSON_BYTES, provider_message, to_float

CAPABILITIES = Capabilities.declared("aimlapi")

#: Room for one image sent inline as ``b64_json`` in an answer: base64 of a 6 MiB image
#: (outputs are about one megapixel).
INLINE_IMAGE_BYTES = 8 * 1024 * 1024


class AimlApiProvider(HttpProvider):
    CAPABILITIES = CAPABILITIES
    KEY_ENV = "AIMLAPI_API_KEY"

    def build_body(self, request: GenerationRequest) -> dict[str, Any]:
        """The JSON body for ``request`` (public so tests and tools can inspect it)."""
        caps = self.CAPABILITIES
        body: dict[str, Any] = {
            "prompt": request.prompt,
            "aspect_ratio": request.effective_aspect_ratio().value,
            "num_images": request.num_images,
            "output_format": request.output_format.value,
        }
        if request.references:
            body["model"] = caps.edit_model
            urls = [inline_reference(ref) for ref in request.references]
            body["image_url"] = urls[0] if len(urls) == 1 else urls
        else:
            body["model"] = caps.text_model
        tolerance = request.safety_tolerance
        put_given(
            body,
            seed=request.seed,
            guidance_scale=request.guidance,
            safety_tolerance=None if tolerance is None else str(tolerance),
        )
        return body

    async def submit(self, request: GenerationRequest) -> Submitted | Finished:
        self.check(request)
        answer = await self.post_submit(
            f"{self.base_url}/v1/images/generations",
            self.build_body(request),
            headers={"Authorization": f"Bearer {self.key()}"},
            max_bytes=MAX_JSON_BYTES + request.num_images * INLINE_IMAGE_BYTES,
        )
        return self.parse(answer)

    def parse(self, answer: Any) -> Finished:
        """Read either documented answer shape."""
        if not isinstance(answer, dict):
            raise self.http.bad_answer("the answer is not a JSON object")
        status = to_int(answer.get("statusCode"))
        if status is not None and status >= 400:
            raise self.http.failure(
                answer.get("message") if isinstance(answer.get("message"), str) else None
            )
        items = answer.get("images")
        if items is None:
            items = answer.get("data")
        if items is None:
            items = []
        if not isinstance(items, list):
            raise self.http.bad_answer("'images' is not a list")
        if not items and provider_message(answer):
            # No image, but words (moderation, most often): report what was said.
            raise self.http.failure(provider_message(answer))
        outputs: list[OutputImage] = []
        flags = bool_flags(answer.get("has_nsfw_concepts"), len(items))
        for item, flag in zip(items, flags, strict=True):
            if not isinstance(item, dict):
                raise self.http.bad_answer("an image entry is not an object")
            url = item.get("url")
            b64 = item.get("b64_json")
            if isinstance(url, str) and url:
                outputs.append(OutputImage(url=url, nsfw=flag))
            elif isinstance(b64, str) and b64:
                try:
                    data = base64.b64decode(b64, validate=True)
                except (binascii.Error, ValueError) as err:
                    raise self.http.bad_answer("b64_json is not base64") from err
                outputs.append(OutputImage(data=data, nsfw=flag))
            else:
                raise self.http.bad_answer("an image entry has neither url nor b64_json")
        credits = None
        meta = answer.get("meta")
        if isinstance(meta, dict) and isinstance(meta.get("usage"), dict):
            credits = to_float(meta["usage"].get("credits_used"))
        return finish(self, outputs, seed=to_int(answer.get("seed")), credits=credits)
