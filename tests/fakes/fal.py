"""A fake fal.ai queue: ``POST /{endpoint id}``, then status / result / cancel URLs that drop
the model sub-path (``/fal-ai/flux-pro/requests/{id}/status`` for ``fal-ai/flux-pro/kontext/max``).

* ``Authorization: Key …``; 401 ``{"detail": …}`` otherwise.
* Bodies are checked against the notes' tables (edit, ``/multi``, ``/text-to-image``, dev); a
  violation gets 422 with ``detail: [{loc, msg, type}]`` and is recorded.
* Status: 202 ``IN_QUEUE`` (with ``queue_position``) and ``IN_PROGRESS`` while pending, 200
  ``COMPLETED`` when finished, whether the request succeeded or not: the result URL tells.
* Job results, scripted as the ``then`` of a processing outcome (or the submit outcome):
  success (``b64=True``: images as ``data:`` URIs, as ``sync_mode`` does), ``nsfw_flags``,
  ``Outcome.failed("content_policy_violation")`` (422 with that ``type`` and a message without
  the usual moderation words), or any ``Outcome.http(status, message)``.
* Submit errors as documented: ``Outcome.http(403, "User is locked. …")``, 422, 5xx.
* ``PUT cancel_url``: 202 ``CANCELLATION_REQUESTED`` while pending, 400 ``ALREADY_COMPLETED``.
* Result URLs expire after :attr:`FalFake.result_ttl` seconds of the injected clock (404).
"""

from __future__ import annotations

import base64
from typing import Any

from aiohttp import web

from tests.fakes.noteschemas import fal_schemas
from tests.fakes.server import FakeProvider, Job, Kind, Outcome, ratio_size, render

ENDPOINTS = {
    "fal-ai/flux-pro/kontext": "edit",
    "fal-ai/flux-pro/kontext/max": "edit",
    "fal-ai/flux-pro/kontext/multi": "multi",
    "fal-ai/flux-pro/kontext/max/multi": "multi",
    "fal-ai/flux-pro/kontext/text-to-image": "text",
    "fal-ai/flux-pro/kontext/max/text-to-image": "text",
    "fal-ai/flux-kontext/dev": "dev",
}


class FalFake(FakeProvider):
    name = "fal"
    key_env = "FAL_KEY"
    result_ttl = 7 * 86400.0

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.apps: dict[str, str] = {}  # job id -> "owner/app"
        self.endpoints: dict[str, str] = {}  # job id -> endpoint id
        self.cancelled: set[str] = set()

    def routes(self, router: web.UrlDispatcher) -> None:
        router.add_get("/{owner}/{app}/requests/{id}/status", self._status)
        router.add_put("/{owner}/{app}/requests/{id}/cancel", self._cancel)
        router.add_get("/{owner}/{app}/requests/{id}", self._result)
        router.add_post("/{endpoint:.+}", self._submit)

    def error_body(self, status: int, message: str, outcome: Outcome) -> dict[str, Any]:
        if status == 422:
            return {"detail": [{"loc": ["body"], "msg": message, "type": "value_error"}]}
        if status >= 500:
            return {"detail": message, "error_type": "runner_disconnected"}
        return {"detail": message}

    def _key_ok(self, request: web.Request) -> bool:
        return request.headers.get("Authorization") == f"Key {self.api_key}"

    def _unauthorized(self) -> web.Response:
        return web.json_response({"detail": "Invalid or missing API key"}, status=401)

    def _urls(self, job_id: str) -> dict[str, str]:
        base = f"{self.base_url}/{self.apps[job_id]}/requests/{job_id}"
        return {
            "request_id": job_id,
            "response_url": base,
            "status_url": f"{base}/status",
            "cancel_url": f"{base}/cancel",
        }

    async def _submit(self, request: web.Request) -> web.StreamResponse:
        endpoint = request.match_info["endpoint"]
        kind = ENDPOINTS.get(endpoint)
        body = await self.json_body(request)
        check = fal_schemas(self.docs)[kind] if self.docs is not None and kind else None
        entry = self.record(request, "submit", body, auth_ok=self._key_ok(request), check=check)
        if kind is None:
            self.violations.append(f"POST {request.path}: not a Kontext endpoint")
            return web.json_response({"detail": "Application not found"}, status=404)
        if not entry.auth_ok:
            return self._unauthorized()
        if entry.violations or not isinstance(body, dict):
            detail = [
                {"loc": ["body", v.split(":")[0]], "msg": v, "type": "value_error"}
                for v in entry.violations or ["<body>: not an object"]
            ]
            return web.json_response({"detail": detail}, status=422)
        answer = await self.common(request, self.next_outcome("submit", Outcome.processing(1)))
        if isinstance(answer, web.StreamResponse):
            return answer
        pending = answer.kind is Kind.PROCESSING
        ratio = body.get("aspect_ratio") or body.get("resolution_mode")
        first = body.get("image_url") or (body.get("image_urls") or [""])[0]
        size = (
            ratio_size(ratio)
            if ratio and ":" in str(ratio)
            else self.reference_size(str(first))
            if first
            else ratio_size("1:1")
        )
        job = Job(
            id=f"{self.new_id()}-7cb3-445b-9f39-fdaeccb1d730",
            polls=answer.polls if pending else 0,
            result=(answer.then or Outcome.success()) if pending else answer,
            size=size,
            fmt=str(body.get("output_format", "jpeg")),
            count=int(body.get("num_images", 1)),
        )
        self.jobs[job.id] = job
        self.apps[job.id] = "/".join(endpoint.split("/")[:2])
        self.endpoints[job.id] = endpoint
        return web.json_response(
            {"status": "IN_QUEUE", **self._urls(job.id), "queue_position": job.polls}
        )

    def _job(self, request: web.Request) -> Job | None:
        job = self.jobs.get(request.match_info["id"])
        app = f"{request.match_info['owner']}/{request.match_info['app']}"
        if job is None or self.apps.get(job.id) != app:
            return None
        return job

    async def _status(self, request: web.Request) -> web.StreamResponse:
        self.record(request, "poll", None, auth_ok=self._key_ok(request))
        if not self._key_ok(request):
            return self._unauthorized()
        job = self._job(request)
        if job is None:
            return web.json_response({"detail": "Request not found"}, status=404)
        answer = await self.common(
            request, self.next_outcome("poll", Outcome(Kind.PROCESSING, polls=-1))
        )
        if isinstance(answer, web.StreamResponse):
            return answer
        urls = self._urls(job.id)
        if answer.kind is Kind.FAILED:  # FAILED / CANCELED: listed by others, not by fal-js
            body = {"status": answer.message, **urls, "error": "Request failed"}
            return web.json_response(body)
        if job.polls > 0 and job.id not in self.cancelled:
            job.polls -= 1
            if job.polls > 0:
                body = {"status": "IN_QUEUE", **urls, "queue_position": job.polls}
                return web.json_response(body, status=202)
            return web.json_response({"status": "IN_PROGRESS", **urls, "logs": []}, status=202)
        job.polls = -1
        metrics = {"inference_time": 6.1}
        return web.json_response({"status": "COMPLETED", **urls, "logs": [], "metrics": metrics})

    async def _result(self, request: web.Request) -> web.StreamResponse:
        self.record(request, "result", None, auth_ok=self._key_ok(request))
        if not self._key_ok(request):
            return self._unauthorized()
        job = self._job(request)
        if job is None:
            return web.json_response({"detail": "Request not found"}, status=404)
        if job.polls > 0:
            return web.json_response({"detail": "Request is still in progress"}, status=400)
        if job.id in self.cancelled:
            return web.json_response({"detail": "Request was cancelled"}, status=400)
        outcome = job.result
        if outcome.kind is Kind.FAILED and outcome.message == "content_policy_violation":
            item = {
                "loc": ["body", "image_url"],
                "msg": "The request was refused.",
                "type": "content_policy_violation",
                "url": "https://docs.fal.ai/errors#content_policy_violation",
            }
            return web.json_response(
                {"detail": [item]}, status=422, headers={"X-Fal-Retryable": "false"}
            )
        if outcome.kind is Kind.FAILED:
            return web.json_response(
                {"detail": outcome.message, "error_type": "runner_disconnected"}, status=500
            )
        answer = await self.common(request, outcome)
        if isinstance(answer, web.StreamResponse):
            return answer
        if answer.b64:
            urls = [
                "data:image/png;base64," + base64.b64encode(render(job.size, "png", i)).decode()
                for i in range(job.count)
            ]
        else:
            urls = self.result_urls(job.size, job.fmt, job.count, answer)
        flags = (list(answer.nsfw or ()) + [False] * job.count)[: job.count]
        width, height = job.size
        images = [
            {"url": u, "content_type": f"image/{job.fmt}", "width": width, "height": height}
            for u in urls
        ]
        body = {"images": images, "seed": 2718281, "has_nsfw_concepts": flags, "prompt": "x"}
        return web.json_response(body, headers={"x-fal-request-id": job.id})

    async def _cancel(self, request: web.Request) -> web.StreamResponse:
        self.record(request, "cancel", None, auth_ok=self._key_ok(request))
        if not self._key_ok(request):
            return self._unauthorized()
        job = self._job(request)
        if job is None:
            return web.json_response({"status": "NOT_FOUND"}, status=404)
        if job.polls < 0 or job.polls == 0 or job.id in self.cancelled:
            return web.json_response({"status": "ALREADY_COMPLETED"}, status=400)
        self.cancelled.add(job.id)
        return web.json_response({"status": "CANCELLATION_REQUESTED"}, status=202)
