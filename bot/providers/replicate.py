"""Replicate: BFL's FLUX.1 Kontext [max] / [pro] / [dev] as predictions.

``POST /v1/models/black-forest-labs/flux-kontext-{max,pro,dev}/predictions`` with
``{"input": {...}}`` and ``Prefer: wait=N`` answers with the finished prediction when the
model is quick, else with a ``starting``/``processing`` one that is polled at ``urls.get``.

Decisions:

* ``Prefer: wait`` is kept short (:data:`WAIT_SECONDS`): until the POST answers we hold no
  prediction id, and a crash in that window would leave a billed prediction we cannot find;
  a short wait still returns quick predictions in the POST.
* The handle is ``urls.get`` (a restart polls exactly that); cancel is ``POST {urls.get}/cancel``,
  the documented cancel path. The token goes only to ``REPLICATE_BASE_URL``'s host or
  ``replicate.com`` hosts.
* ``output`` is one URL for these models; a list is accepted too, and a URL present while the
  status is still ``processing`` is taken (Replicate answers as soon as files exist).
* ``failed`` with E005 / "flagged as sensitive" is moderation; other failures end the job;
  ``canceled`` (and unknown statuses such as ``aborted``) end it too.
* Several references: only ``flux-kontext-apps/multi-image-kontext-pro`` is documented
  (exactly two images, pinned version, generic ``/v1/predictions``), so ``REPLICATE_MODEL=pro``
  takes 2 references and [max]/[dev] take 1; more is refused before any call, naming the
  providers that can take them.
* ``output_format`` is ``jpg``/``png`` (never ``jpeg``). ``safety_tolerance`` is at most 2
  with an image (Replicate's own limit); [dev] has none and keeps its safety checker on.
* Local bytes: a ``data:`` URL up to 256 kB (Replicate's guidance), else an upload to the
  Files API (``POST /v1/files``, field ``content``) whose ``urls.get`` is passed instead.
* No concurrency cap is documented (creates are limited to 600/min); the default of 5 at once
  is a conservative choice, overridable per deployment.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, ClassVar

import httpx

from bot.i18n import t
from bot.models import OutputFormat
from bot.providers.base import Capabilities, Finished, GenerationRequest, Pending, Submitted
from bot.providers.common import (
    HttpProvider,
    data_uri,
    finish,
    job_failed,
    put_given,
    url_images,
    url_on,
)
from bot.providers.errors import InvalidInput, ProviderError, RateLimited
from bot.providers.http import Call, ProviderHttp

REPLICATE_DOMAINS = ("replicate.com",)
WAIT_SECONDS = 10
MAX_DATA_URL_BYTES = 256 * 1024
MULTI_VERSION = "6d14f9b3d25a9400c4a5e5f0f6842ae7537fefcf68df86dad9533f66204f2bb2"
MAX_TOLERANCE_WITH_IMAGE = 2
_OWNER = "black-forest-labs"
_PENDING = ("starting", "processing")

CAPABILITIES = Capabilities.declared("replicate")
PRO = CAPABILITIES.model_copy(
    update={
        "edit_model": f"{_OWNER}/flux-kontext-pro",
        "text_model": f"{_OWNER}/flux-kontext-pro",
        "max_references": 2,
        "price_per_image": 0.04,
    }
)
DEV = CAPABILITIES.model_copy(
    update={
        "edit_model": f"{_OWNER}/flux-kontext-dev",
        "text_model": None,
        "guidance_range": (0.0, 10.0),
        "safety_tolerance": False,
        "price_per_image": 0.025,
    }
)
_RESETS = re.compile(r"resets in ~?\s*(\d+(?:\.\d+)?)\s*s", re.IGNORECASE)


class ReplicateHttp(ProviderHttp):
    """Replicate's throttling names its wait only in words ("resets in ~30s")."""

    def status_error(self, response: httpx.Response, body: bytes | None = None) -> ProviderError:
        error = super().status_error(response, body)
        if isinstance(error, RateLimited) and error.retry_after is None:
            raw = response.content if body is None else body
            found = _RESETS.search(raw[:2000].decode("utf-8", "replace"))
            if found:
                said = self.safe(error.detail)
                return self.rate_limited(said, float(found.group(1)), error.detail)
        return error


class ReplicateProvider(HttpProvider):
    CAPABILITIES = CAPABILITIES
    KEY_ENV = "REPLICATE_API_TOKEN"
    HTTP = ReplicateHttp
    MODELS: ClassVar[Mapping[str, Capabilities]] = {"max": CAPABILITIES, "pro": PRO, "dev": DEV}

    def _auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key()}"}

    def route(self, request: GenerationRequest, images: list[str]) -> tuple[str, dict[str, Any]]:
        """The create URL and JSON body for ``request`` with reference ``images``."""
        caps = self.caps
        fmt = "jpg" if request.output_format is OutputFormat.JPEG else "png"
        ratio = request.aspect_ratio
        inputs: dict[str, Any] = {
            "prompt": request.prompt,
            "output_format": fmt,
            "aspect_ratio": ratio.value
            if ratio is not None
            else ("match_input_image" if images else request.effective_aspect_ratio().value),
        }
        put_given(inputs, seed=request.seed, guidance=request.guidance)
        if caps.safety_tolerance and request.safety_tolerance is not None:
            tolerance = request.safety_tolerance
            if images:
                tolerance = min(tolerance, MAX_TOLERANCE_WITH_IMAGE)
            inputs["safety_tolerance"] = tolerance
        if not caps.safety_tolerance:
            inputs["disable_safety_checker"] = False
        if len(images) > 1:
            inputs["input_image_1"], inputs["input_image_2"] = images
            return f"{self.base_url}/v1/predictions", {"version": MULTI_VERSION, "input": inputs}
        if images:
            inputs["input_image"] = images[0]
        model = caps.edit_model
        return f"{self.base_url}/v1/models/{model}/predictions", {"input": inputs}

    async def submit(self, request: GenerationRequest) -> Submitted | Finished:
        self.check(request)
        url, body = self.route(request, await self.reference_urls(request))
        headers = {**self._auth(), "Prefer": f"wait={WAIT_SECONDS}"}
        answer = await self.post_submit(url, body, headers=headers)
        result = self.parse(answer)
        if isinstance(result, Finished):
            return result
        return Submitted(handle=self._handle(answer))

    def _handle(self, prediction: dict[str, Any]) -> str:
        urls = prediction.get("urls")
        get = urls.get("get") if isinstance(urls, dict) else None
        if url_on(get, self.base_url, REPLICATE_DOMAINS):
            return str(get)
        ident = prediction.get("id")
        if isinstance(ident, str) and re.fullmatch(r"[A-Za-z0-9_-]{1,100}", ident):
            return f"{self.base_url}/v1/predictions/{ident}"
        raise self.http.bad_answer("a prediction without a usable urls.get or id")

    def _checked(self, handle: str) -> str:
        if not url_on(handle, self.base_url, REPLICATE_DOMAINS):
            raise ProviderError(
                self.caps.name,
                t("errors.provider.bad_handle", provider=self.caps.label),
                detail="bad handle",
            )
        return handle

    async def poll(self, handle: str) -> Pending | Finished:
        answer = await self.poll_get(self._checked(handle), self._auth())
        return self.parse(answer, handle)

    def parse(self, answer: Any, handle: str | None = None) -> Pending | Finished:
        if not isinstance(answer, dict):
            raise self.http.bad_answer("the prediction is not a JSON object")
        status = str(answer.get("status", ""))
        output = answer.get("output")
        urls = [output] if isinstance(output, str) else output
        has_urls = isinstance(urls, list) and urls and all(isinstance(u, str) for u in urls)
        if status in ("succeeded", *_PENDING) and has_urls:
            assert isinstance(urls, list)
            return finish(self, url_images(urls), handle=handle or self._handle(answer))
        if status in _PENDING:
            return Pending(status=status)
        if status == "succeeded":
            raise self.http.bad_answer("a succeeded prediction without output")
        if status == "canceled":
            raise ProviderError(
                self.caps.name,
                t("errors.provider.cancelled_there", provider=self.caps.label),
                detail="canceled",
            )
        error = answer.get("error")
        text = error if isinstance(error, str) and error else f"status {status[:40]!r}"
        if "E005" in text:
            raise self.http.moderated(self.http.safe(text))
        raise job_failed(self, text)

    async def host_bytes(self, data: bytes, mime: str) -> str:
        """A ``data:`` URL when small, else an upload to the Files API."""
        if len(data) <= MAX_DATA_URL_BYTES:
            return data_uri(data, mime)
        answer = await self.upload_file(
            f"{self.base_url}/v1/files", "content", data, mime, self._auth()
        )
        urls = answer.get("urls") if isinstance(answer, dict) else None
        url = urls.get("get") if isinstance(urls, dict) else None
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise self.http.bad_answer(
                "the file upload answer has no urls.get", call=Call.IDEMPOTENT
            )
        return url

    async def cancel(self, handle: str) -> bool:
        """``POST {urls.get}/cancel``; a finished prediction keeps its status."""
        try:
            answer = await self.http.request(
                "POST", f"{self._checked(handle)}/cancel", Call.IDEMPOTENT, headers=self._auth()
            )
        except InvalidInput:
            return False
        return isinstance(answer, dict) and answer.get("status") == "canceled"

    async def key_status(self) -> str | None:
        """``GET /v1/account``: the token's account, without running anything."""
        answer = await self.http.request(
            "GET", f"{self.base_url}/v1/account", Call.IDEMPOTENT, headers=self._auth()
        )
        name = answer.get("username") if isinstance(answer, dict) else None
        if not isinstance(name, str) or not name:
            raise self.http.bad_answer("the account answer has no username")
        return f"account {self.http.safe(name)}"
