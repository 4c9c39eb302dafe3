"""WaveSpeed: ``wavespeed-ai/flux-kontext-max`` and its ``/multi`` variant; submit, then poll.

Decisions:

* One reference goes to the single-image model (``image``). That model has no
  ``aspect_ratio`` field and keeps the reference's shape, which is exactly our default (the
  ratio closest to the first reference). When a person explicitly asks for a different ratio,
  the request goes to ``/multi`` with a one-image ``images`` list and ``aspect_ratio``, so the
  choice is honoured instead of silently dropped.
* Two or more references always go to ``/multi`` with ``images`` and ``aspect_ratio``. The
  model takes up to 5; the common request caps references at 4.
* No text-to-image and one image per request (no ``num_images`` field).
* Polls are never faster than every 2 s (``min_poll_interval``), as the provider asks.
* Local bytes are uploaded with ``/api/v3/media/upload/binary`` (kept 7 days there) and sent
  as the returned ``download_url``.
"""

from __future__ import annotations

from typing import Any

from bot.models import AspectRatio
from bot.providers.base import Capabilities, Finished, GenerationRequest, Pending, Submitted
from bot.providers.common import HttpProvider, bool_flags, finish, put_given, to_int, url_images
from bot.providers.http import Call, provider_message

CAPABILITIES = Capabilities.declared("wavespeed")


class WaveSpeedProvider(HttpProvider):
    CAPABILITIES = CAPABILITIES
    KEY_ENV = "WAVESPEED_API_KEY"

    def _auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key()}"}

    def route(self, request: GenerationRequest, images: list[str]) -> tuple[str, dict[str, Any]]:
        """The model path and body for ``request`` with hosted reference ``images``."""
        model = self.CAPABILITIES.edit_model
        body: dict[str, Any] = {"prompt": request.prompt, "enable_safety_checker": True}
        first = request.references[0]
        own_ratio = AspectRatio.closest(first.width, first.height)
        if len(images) == 1 and request.aspect_ratio in (None, own_ratio):
            path = model
            body["image"] = images[0]
        else:
            path = f"{model}/multi"
            body["images"] = images
            body["aspect_ratio"] = request.effective_aspect_ratio().value
        put_given(body, seed=request.seed, guidance_scale=request.guidance)
        return path, body

    async def submit(self, request: GenerationRequest) -> Submitted | Finished:
        self.check(request)
        path, body = self.route(request, await self.reference_urls(request))
        answer = await self.post_submit(
            f"{self.base_url}/api/v3/{path}", body, headers=self._auth()
        )
        data = self._data(answer)
        handle = data.get("id")
        if not isinstance(handle, str) or not handle:
            raise self.http.bad_answer("the submit answer has no id")
        result = self._state(data, handle)
        if isinstance(result, Finished):
            return result
        return Submitted(handle=handle)

    async def poll(self, handle: str) -> Pending | Finished:
        answer = await self.http.request(
            "GET",
            f"{self.base_url}/api/v3/predictions/{handle}/result",
            Call.IDEMPOTENT,
            headers=self._auth(),
            min_delay=self.CAPABILITIES.min_poll_interval,
        )
        return self._state(self._data(answer), handle)

    async def host_bytes(self, data: bytes, mime: str) -> str:
        """Upload to WaveSpeed's media store (kept 7 days there)."""
        upload = f"{self.base_url}/api/v3/media/upload/binary"
        answer = await self.upload_file(upload, "file", data, mime, self._auth())
        url = self._data(answer).get("download_url")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise self.http.bad_answer(
                "the upload answer has no download_url", call=Call.IDEMPOTENT
            )
        return url

    def _data(self, answer: Any) -> dict[str, Any]:
        """The ``data`` object of an envelope, after checking the envelope's own ``code``."""
        if not isinstance(answer, dict):
            raise self.http.bad_answer("the answer is not a JSON object")
        code = to_int(answer.get("code"))
        if code is not None and code >= 400:
            raise self.http.for_status(code, provider_message(answer))
        data = answer.get("data")
        if not isinstance(data, dict):
            raise self.http.bad_answer("the answer has no data object")
        return data

    def _state(self, data: dict[str, Any], handle: str) -> Pending | Finished:
        status = str(data.get("status", "")).lower()
        if status in ("created", "processing", "queued", "pending"):
            return Pending(status=status)
        if status == "failed":
            error = data.get("error")
            raise self.http.failure(error if isinstance(error, str) else None)
        if status != "completed":
            raise self.http.bad_answer(f"unknown status {status[:40]!r}")
        urls = self.listed_urls(data, "outputs")
        flags = bool_flags(data.get("has_nsfw_contents"), len(urls))
        return finish(self, url_images(urls, flags), handle=handle)
