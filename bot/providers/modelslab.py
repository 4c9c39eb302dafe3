"""ModelsLab: ``flux-kontext-dev`` through ``POST /api/v6/images/img2img`` (1–2 references).

The key travels in the JSON body, so bodies are never logged anywhere in this package.

Decisions:

* There is no ``aspect_ratio`` field and the default output is 512×512, so the ratio (chosen,
  else closest to the first reference) is sent as ``width``/``height`` with the long side
  1024 (the documented maximum) and the short side rounded to a multiple of 16: FLUX works
  on a 16-pixel latent grid (8× VAE downsampling, 2×2 patches), so other sizes are cropped
  or padded by the model anyway. 16:9 → 1024×576, 3:2 → 1024×688, 21:9 → 1024×432.
* ``strength`` and ``num_inference_steps`` are left at the provider's defaults (0.5, 28): we
  have no measurement that other values serve edits better.
* ``safety_checker`` is always on; ``nsfw_content_detected`` is one flag for all outputs, so a
  flagged answer is :class:`~bot.providers.errors.Moderated`.
* Local bytes are first turned into a hosted URL with ``/api/v6/image_editing/base64_to_url``
  (an upload bills nothing, so it is retried like a poll).
* Failures often arrive inside HTTP 200 as ``status: error`` with ``message`` (or the legacy
  ``messege``); numbers may be strings.
"""

from __future__ import annotations

from typing import Any

from bot.models import AspectRatio
from bot.providers.base import Capabilities, Finished, GenerationRequest, Pending, Submitted
from bot.providers.common import (
    HttpProvider,
    bool_flags,
    data_uri,
    finish,
    put_given,
    to_int,
    url_images,
)
from bot.providers.http import Call, provider_message, to_float

CAPABILITIES = Capabilities.declared("modelslab")

LONG_SIDE = 1024
GRID = 16


def output_size(ratio: AspectRatio) -> tuple[int, int]:
    """Width and height for ``ratio``: long side 1024, short side a multiple of 16."""
    value = ratio.value_ratio
    short = max(GRID, round(LONG_SIDE / max(value, 1 / value) / GRID) * GRID)
    return (LONG_SIDE, short) if value >= 1 else (short, LONG_SIDE)


class ModelsLabProvider(HttpProvider):
    CAPABILITIES = CAPABILITIES
    KEY_ENV = "MODELSLAB_API_KEY"

    async def submit(self, request: GenerationRequest) -> Submitted | Finished:
        self.check(request)
        images = await self.reference_urls(request)
        answer = await self.post_submit(
            f"{self.base_url}/api/v6/images/img2img", self.build_body(request, images, self.key())
        )
        result = self.parse(answer)
        if isinstance(result, Pending):
            handle = str(to_int(answer.get("id")) or answer.get("id") or "")
            if not handle:
                raise self.http.bad_answer("a processing answer without an id")
            return Submitted(handle=handle, eta_seconds=result.eta_seconds)
        return result

    def build_body(self, request: GenerationRequest, images: list[str], key: str) -> dict[str, Any]:
        width, height = output_size(request.effective_aspect_ratio())
        body: dict[str, Any] = {
            "key": key,
            "model_id": self.CAPABILITIES.edit_model,
            "prompt": request.prompt,
            "init_image": images[0],
            "width": width,
            "height": height,
            "samples": request.num_images,
            "safety_checker": True,
        }
        if len(images) > 1:
            body["init_image_2"] = images[1]
        put_given(body, seed=request.seed, guidance=request.guidance)
        return body

    async def poll(self, handle: str) -> Pending | Finished:
        answer = await self.http.request(
            "POST",
            f"{self.base_url}/api/v6/images/fetch/{handle}",
            Call.IDEMPOTENT,
            json_body={"key": self.key()},
            min_delay=self.CAPABILITIES.min_poll_interval,
        )
        return self.parse(answer, handle=handle)

    async def host_bytes(self, data: bytes, mime: str) -> str:
        answer = await self.http.request(
            "POST",
            f"{self.base_url}/api/v6/image_editing/base64_to_url",
            Call.IDEMPOTENT,
            json_body={"key": self.key(), "init_image": data_uri(data, mime)},
        )
        if not isinstance(answer, dict):
            raise self.http.bad_answer(
                "the upload answer is not a JSON object", call=Call.IDEMPOTENT
            )
        if str(answer.get("status", "success")).lower() in ("error", "failed"):
            raise self.http.failure(provider_message(answer))
        for field in ("output", "link", "url", "image_url"):
            value = answer.get(field)
            if isinstance(value, list) and value and isinstance(value[0], str):
                return value[0]
            if isinstance(value, str) and value.startswith(("http://", "https://")):
                return value
        raise self.http.bad_answer("the upload answer has no URL", call=Call.IDEMPOTENT)

    def parse(self, answer: Any, *, handle: str | None = None) -> Pending | Finished:
        """success → Finished, processing → Pending, error/failed → the error tree."""
        if not isinstance(answer, dict):
            raise self.http.bad_answer("the answer is not a JSON object")
        status = str(answer.get("status", "")).lower()
        if status in ("error", "failed"):
            raise self.http.failure(
                provider_message(answer), retry_after=to_float(answer.get("retry_after"))
            )
        if status == "processing":
            return Pending(status="processing", eta_seconds=to_float(answer.get("eta")))
        if status != "success":
            raise self.http.bad_answer(f"unknown status {status[:40]!r}")
        urls = self.listed_urls(answer, "output")
        flags = bool_flags(answer.get("nsfw_content_detected"), len(urls))
        meta = answer.get("meta")
        seed = to_int(meta.get("seed")) if isinstance(meta, dict) else None
        job_id = to_int(answer.get("id"))
        return finish(
            self,
            url_images(urls, flags),
            seed=seed,
            handle=handle or (str(job_id) if job_id is not None else None),
        )
