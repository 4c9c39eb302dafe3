"""Black Forest Labs: FLUX.1 Kontext [pro] / [max] on the makers' own API; submit, then poll.

``POST /v1/flux-kontext-max`` (or ``-pro``, chosen with ``BFL_MODEL``) takes the edit and, with
no ``input_image``, text-to-image. It answers ``{id, polling_url}``; the job is polled at
exactly that URL, which may name another BFL host than the one submitted to.

Decisions:

* The handle is the ``polling_url`` itself (a restart polls what BFL gave, never a rebuilt
  URL). The key goes only to a URL on a BFL domain or on ``BFL_BASE_URL``'s own host; any
  other polling URL is refused as an unreadable answer. A handle without a URL (the webhook
  answer has only ``id``) is polled at ``/v1/get_result?id=`` on the base URL.
* References: the first is ``input_image``, the rest ``input_image_2`` … ``_4`` (BFL calls
  them experimental). A public URL is sent as is; local bytes go as bare base64, which is the
  documented form (a ``data:`` prefix is not).
* ``aspect_ratio`` and ``output_format`` are always sent: BFL's own pages disagree on the
  format's default, and without a ratio an edit follows the input's shape only roughly.
* ``safety_tolerance`` is at most 2 when an image is given (hosts of the same model refuse or
  clamp more); BFL's range is 0–6 for text-to-image.
* ``result.sample`` is signed for 10 minutes: the caller downloads it at once.
* Statuses: ``Pending`` polls on; ``Ready`` is done; ``Request Moderated`` and ``Content
  Moderated`` are moderation; ``Error``, ``Task not found`` and anything unknown (``Failed``
  appears in BFL's examples) end the job. No cancel call and no synchronous mode exist.
* The account runs 24 tasks at once, 6 of them on [max]: that is the default concurrency.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any, ClassVar

import httpx

from bot.providers.base import Capabilities, Finished, GenerationRequest, Pending, Submitted
from bot.providers.common import (
    HttpProvider,
    finish,
    job_failed,
    put_given,
    to_int,
    url_images,
    url_on,
)
from bot.providers.http import Call, to_float

BFL_DOMAINS = ("bfl.ai", "bfl.ml")

CAPABILITIES = Capabilities.declared("bfl")

PRO = CAPABILITIES.model_copy(
    update={
        "edit_model": "flux-kontext-pro",
        "text_model": "flux-kontext-pro",
        "default_concurrency": 24,
        "price_per_image": 0.04,
    }
)

MAX_TOLERANCE_WITH_IMAGE = 2
_MODERATED = ("request moderated", "content moderated")


class BflProvider(HttpProvider):
    CAPABILITIES = CAPABILITIES
    KEY_ENV = "BFL_API_KEY"
    MODELS: ClassVar[Mapping[str, Capabilities]] = {"max": CAPABILITIES, "pro": PRO}

    def _auth(self) -> dict[str, str]:
        return {"x-key": self.key(), "accept": "application/json"}

    def build_body(self, request: GenerationRequest) -> dict[str, Any]:
        body: dict[str, Any] = {
            "prompt": request.prompt,
            "aspect_ratio": request.effective_aspect_ratio().value,
            "output_format": request.output_format.value,
        }
        for index, ref in enumerate(request.references, start=1):
            # A public URL as is; bytes as bare base64 (the documented form, not a data: URI).
            image = ref.url or base64.b64encode(ref.data).decode("ascii")
            body["input_image" if index == 1 else f"input_image_{index}"] = image
        put_given(body, seed=request.seed)
        if request.safety_tolerance is not None:
            tolerance = request.safety_tolerance
            if request.references:
                tolerance = min(tolerance, MAX_TOLERANCE_WITH_IMAGE)
            body["safety_tolerance"] = tolerance
        return body

    async def submit(self, request: GenerationRequest) -> Submitted | Finished:
        self.check(request)
        answer = await self.post_submit(
            f"{self.base_url}/v1/{self.caps.edit_model}",
            self.build_body(request),
            headers=self._auth(),
        )
        if not isinstance(answer, dict):
            raise self.http.bad_answer("the submit answer is not a JSON object")
        polling_url = answer.get("polling_url")
        task_id = answer.get("id")
        if isinstance(polling_url, str) and polling_url:
            handle = polling_url
        elif isinstance(task_id, str) and task_id:
            handle = task_id
        else:
            raise self.http.bad_answer("the submit answer has neither polling_url nor id")
        self._poll_url(handle)  # refuse a polling URL we would not send the key to, now
        return Submitted(handle=handle)

    def _poll_url(self, handle: str) -> str:
        if not handle.startswith(("http://", "https://")):
            return str(httpx.URL(f"{self.base_url}/v1/get_result", params={"id": handle}))
        if not url_on(handle, self.base_url, BFL_DOMAINS):
            raise self.http.bad_answer("the polling URL is not on a Black Forest Labs host")
        url = httpx.URL(handle)
        if "id" not in url.params:
            task_id = url.path.rstrip("/").rsplit("/", 1)[-1]
            url = url.copy_merge_params({"id": task_id})
        return str(url)

    async def poll(self, handle: str) -> Pending | Finished:
        answer = await self.poll_get(self._poll_url(handle), self._auth())
        return self.parse(answer, handle)

    def parse(self, answer: Any, handle: str) -> Pending | Finished:
        if not isinstance(answer, dict):
            raise self.http.bad_answer("the poll answer is not a JSON object")
        status = str(answer.get("status", ""))
        word = status.strip().lower()
        if word == "pending":
            progress = to_float(answer.get("progress"))
            if progress is not None and progress > 1:
                progress /= 100  # some answers count in percent
            if progress is not None:
                progress = min(1.0, max(0.0, progress))
            return Pending(status=status, progress=progress)
        if word in _MODERATED:
            raise self.http.moderated(_reasons(answer.get("details")) or status)
        if word != "ready":
            said = f"{status[:40]}" if status else "no status"
            raise job_failed(self, f"the job ended with status {said!r}")
        result = answer.get("result")
        sample = result.get("sample") if isinstance(result, dict) else None
        if not isinstance(sample, str) or not sample:
            raise self.http.bad_answer("a Ready answer without result.sample")
        seed = to_int(result.get("seed")) if isinstance(result, dict) else None
        return finish(self, url_images([sample]), seed=seed, handle=handle)

    async def key_status(self) -> str | None:
        """One cheap authenticated call: the account's credit balance."""
        answer = await self.http.request(
            "GET", f"{self.base_url}/v1/credits", Call.IDEMPOTENT, headers=self._auth()
        )
        credits = to_float(answer.get("credits")) if isinstance(answer, dict) else None
        if credits is None:
            raise self.http.bad_answer("the credits answer has no number")
        return f"{credits:g} credits (${credits / 100:.2f})"


def _reasons(details: object) -> str | None:
    if isinstance(details, dict):
        reasons = details.get("Moderation Reasons")
        if isinstance(reasons, list) and reasons:
            return ", ".join(str(r) for r in reasons[:5])
    return None
