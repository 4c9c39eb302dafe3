"""fal.ai: FLUX.1 Kontext [max] / [pro] / [dev] through fal's queue; submit, poll, fetch.

``POST {FAL_BASE_URL}/{endpoint id}`` queues a request and answers ``request_id`` with
``status_url``, ``response_url`` and ``cancel_url``. Those URLs drop the model sub-path
(``fal-ai/flux-pro/requests/…`` for ``fal-ai/flux-pro/kontext/max``), so they are used
exactly as given and never rebuilt.

Decisions:

* Endpoint per request: one reference → the model's edit endpoint (``image_url``), two to
  four → its ``/multi`` endpoint (``image_urls``; fal states no cap, BFL's own API takes 4),
  none → its ``/text-to-image`` endpoint. [dev] (``fal-ai/flux-kontext/dev``) edits one image
  and has neither multi nor text-to-image. ``FAL_MODEL`` picks the tier (default ``max``).
* The handle is a small JSON object with the three URLs (``status``, ``result``, ``cancel``),
  so a restart polls and cancels exactly what fal returned. The key is only ever sent to a
  URL on ``FAL_BASE_URL``'s host or on a ``fal.run`` host.
* ``COMPLETED`` means finished, not succeeded: the result is always fetched, and a failure
  shows there (422 ``content_policy_violation`` is moderation, other statuses the error tree).
* ``safety_tolerance`` is a string enum ``"1"``…``"6"``; [dev] has none and runs fal's safety
  checker (``enable_safety_checker: true``). [dev] takes ``resolution_mode`` instead of
  ``aspect_ratio`` (``match_input`` unless a ratio is chosen).
* Balance exhausted is HTTP 403 "User is locked. Reason: Exhausted balance…" (not 402): it
  becomes :class:`~bot.providers.errors.CreditsExhausted`; an admin lock is an auth error.
* Local bytes go as ``data:`` URIs (documented). Results are on ``*.fal.media``; an image that
  comes back as a ``data:`` URI (``sync_mode``) is decoded in place.
* fal's synchronous host (``fal.run``) is not used: it has no retries and no handle to resume
  after a crash. Queued requests above the account's concurrency wait at fal instead of being
  refused; the default concurrency (2) is the entry tier fal is reported to start with.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from typing import Any, ClassVar

import httpx

from bot.i18n import t
from bot.providers.aimlapi import INLINE_IMAGE_BYTES  # room for sync_mode's data: URIs
from bot.providers.base import (
    Capabilities,
    Finished,
    GenerationRequest,
    OutputImage,
    Pending,
    Submitted,
)
from bot.providers.common import (
    HttpProvider,
    bool_flags,
    finish,
    inline_reference,
    job_failed,
    put_given,
    to_int,
    url_on,
)
from bot.providers.errors import AuthError, InvalidInput, ProviderError
from bot.providers.http import MAX_JSON_BYTES, Call, ProviderHttp, provider_message

FAL_DOMAINS = ("fal.run",)
_PRO = "fal-ai/flux-pro/kontext"
_DEV = "fal-ai/flux-kontext/dev"

CAPABILITIES = Capabilities.declared("fal")
PRO = CAPABILITIES.model_copy(
    update={"edit_model": _PRO, "text_model": f"{_PRO}/text-to-image", "price_per_image": 0.04}
)
DEV = CAPABILITIES.model_copy(
    update={
        "edit_model": _DEV,
        "text_model": None,
        "max_references": 1,
        "safety_tolerance": False,
        "price_per_image": 0.025,  # per megapixel, rounded up; outputs are about 1 MP
    }
)


class FalHttp(ProviderHttp):
    """fal's error bodies: ``detail`` is a string or a list of ``{loc, msg, type}``."""

    def status_error(self, response: httpx.Response, body: bytes | None = None) -> ProviderError:
        try:
            parsed: object = json.loads(response.content if body is None else body)
        except (json.JSONDecodeError, UnicodeDecodeError):
            parsed = None
        detail = parsed.get("detail") if isinstance(parsed, dict) else None
        items = detail if isinstance(detail, list) else []
        if any(isinstance(i, dict) and i.get("type") == "content_policy_violation" for i in items):
            return self.moderated(f"HTTP {response.status_code}: content_policy_violation")
        said = provider_message(parsed) or ""
        if response.status_code == 403 and "user is locked" in said.lower():
            lowered = said.lower()
            if "balance" in lowered or "top_up" in lowered or "top up" in lowered:
                return self.credits(f"HTTP 403: {self.safe(said)}", self.safe(said))
            return AuthError(
                self.name,
                t("errors.provider.fal_locked", provider=self.label),
                detail=f"HTTP 403: {self.safe(said)}",
            )
        return super().status_error(response, body)


class FalProvider(HttpProvider):
    CAPABILITIES = CAPABILITIES
    KEY_ENV = "FAL_KEY"
    HTTP = FalHttp
    MODELS: ClassVar[Mapping[str, Capabilities]] = {"max": CAPABILITIES, "pro": PRO, "dev": DEV}

    def _auth(self) -> dict[str, str]:
        return {"Authorization": f"Key {self.key()}"}

    def route(self, request: GenerationRequest) -> tuple[str, dict[str, Any]]:
        """The endpoint id and body for ``request``."""
        caps = self.caps
        images = [inline_reference(ref) for ref in request.references]
        body: dict[str, Any] = {
            "prompt": request.prompt,
            "num_images": request.num_images,
            "output_format": request.output_format.value,
        }
        if caps.edit_model == _DEV:
            endpoint = _DEV
            body["image_url"] = images[0]
            body["enable_safety_checker"] = True
            ratio = request.aspect_ratio
            body["resolution_mode"] = ratio.value if ratio is not None else "match_input"
        else:
            if not images:
                endpoint = caps.text_model or caps.edit_model
                body["aspect_ratio"] = request.effective_aspect_ratio().value
            elif len(images) == 1:
                endpoint = caps.edit_model
                body["image_url"] = images[0]
                if request.aspect_ratio is not None:
                    body["aspect_ratio"] = request.aspect_ratio.value
            else:
                endpoint = f"{caps.edit_model}/multi"
                body["image_urls"] = images
                body["aspect_ratio"] = request.effective_aspect_ratio().value
            if request.safety_tolerance is not None:
                body["safety_tolerance"] = str(request.safety_tolerance)
        put_given(body, seed=request.seed, guidance_scale=request.guidance)
        return endpoint, body

    async def submit(self, request: GenerationRequest) -> Submitted | Finished:
        self.check(request)
        endpoint, body = self.route(request)
        answer = await self.post_submit(f"{self.base_url}/{endpoint}", body, headers=self._auth())
        if not isinstance(answer, dict):
            raise self.http.bad_answer("the submit answer is not a JSON object")
        urls = {
            "status": answer.get("status_url"),
            "result": answer.get("response_url"),
            "cancel": answer.get("cancel_url"),
        }
        if not all(url_on(u, self.base_url, FAL_DOMAINS) for u in urls.values()):
            raise self.http.bad_answer("the queue URLs are missing or not on a fal.ai host")
        return Submitted(handle=json.dumps(urls, separators=(",", ":")))

    def _urls(self, handle: str) -> dict[str, str]:
        try:
            urls = json.loads(handle)
        except ValueError:
            urls = None
        if not isinstance(urls, dict) or not all(
            url_on(urls.get(k), self.base_url, FAL_DOMAINS) for k in ("status", "result", "cancel")
        ):
            raise ProviderError(
                self.caps.name,
                t("errors.provider.bad_handle", provider=self.caps.label),
                detail="bad handle",
            )
        return {k: str(v) for k, v in urls.items()}

    async def poll(self, handle: str) -> Pending | Finished:
        urls = self._urls(handle)
        status_url = httpx.URL(urls["status"]).copy_merge_params({"logs": "0"})
        status = await self.poll_get(str(status_url), self._auth())
        if not isinstance(status, dict):
            raise self.http.bad_answer("the status answer is not a JSON object")
        word = str(status.get("status", ""))
        if word in ("IN_QUEUE", "IN_PROGRESS"):
            position = to_int(status.get("queue_position"))
            shown = f"{word} ({position} ahead)" if position else word
            return Pending(status=shown)
        if word != "COMPLETED":
            raise job_failed(self, provider_message(status) or f"status {word[:40]!r}")
        error = status.get("error")
        if isinstance(error, str) and error:
            raise job_failed(self, error)
        answer = await self.http.request(
            "GET",
            urls["result"],
            Call.IDEMPOTENT,
            headers=self._auth(),
            max_bytes=MAX_JSON_BYTES + self.caps.max_num_images * INLINE_IMAGE_BYTES,
        )
        return self.parse(answer, handle)

    def parse(self, answer: Any, handle: str) -> Finished:
        if not isinstance(answer, dict):
            raise self.http.bad_answer("the result is not a JSON object")
        items = answer.get("images")
        if not isinstance(items, list):
            raise self.http.bad_answer("the result has no images list")
        flags = bool_flags(answer.get("has_nsfw_concepts"), len(items))
        outputs = []
        for item, flag in zip(items, flags, strict=True):
            url = item.get("url") if isinstance(item, dict) else None
            if not isinstance(url, str) or not url:
                raise self.http.bad_answer("an image without a url")
            if url.startswith("data:"):
                outputs.append(OutputImage(data=self._inline(url), nsfw=flag))
            else:
                outputs.append(OutputImage(url=url, nsfw=flag))
        return finish(self, outputs, seed=to_int(answer.get("seed")), handle=handle)

    def _inline(self, url: str) -> bytes:
        header, _, payload = url.partition(",")
        if not header.endswith(";base64"):
            raise self.http.bad_answer("an inline image that is not base64")
        try:
            return base64.b64decode(payload, validate=True)
        except (binascii.Error, ValueError) as err:
            raise self.http.bad_answer("an inline image that is not base64") from err

    async def cancel(self, handle: str) -> bool:
        """``PUT cancel_url``: a queued request is dropped, a running one asked to stop."""
        urls = self._urls(handle)
        try:
            answer = await self.http.request(
                "PUT", urls["cancel"], Call.IDEMPOTENT, headers=self._auth()
            )
        except InvalidInput:  # ALREADY_COMPLETED / NOT_FOUND
            return False
        word = answer.get("status") if isinstance(answer, dict) else None
        return word in ("OK", "CANCELLATION_REQUESTED")
