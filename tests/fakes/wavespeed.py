"""A fake WaveSpeed: submit to ``flux-kontext-max`` (or ``/multi``), poll the result, upload.

Answers use the documented envelope ``{code, message, data}``; a job goes ``created`` →
``processing`` → ``completed``/``failed``, all with HTTP 200. Bodies are validated against the
schema built from the page's parameter table (and its ``/multi`` variant); an invalid body
gets ``400`` and is recorded as a violation. A single-image job's output keeps the shape of
its reference when the reference lives on this fake's CDN (as the model keeps it).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from tests.fakes.schemas import wavespeed_schemas
from tests.fakes.server import FakeProvider, Job, Kind, Outcome, ratio_size

MODEL = "wavespeed-ai/flux-kontext-max"


class WaveSpeedFake(FakeProvider):
    name = "wavespeed"

    def routes(self, router: web.UrlDispatcher) -> None:
        router.add_post(f"/api/v3/{MODEL}", self._submit_single)
        router.add_post(f"/api/v3/{MODEL}/multi", self._submit_multi)
        router.add_get("/api/v3/predictions/{id}/result", self._result)
        router.add_post("/api/v3/media/upload/binary", self._upload)

    def error_body(self, status: int, message: str, outcome: Outcome) -> dict[str, Any]:
        return {"code": status, "message": message, "data": None}

    def _unauthorized(self) -> web.Response:
        return web.json_response(
            self.error_body(401, "Unauthorized", Outcome.http(401)), status=401
        )

    async def _submit_single(self, request: web.Request) -> web.StreamResponse:
        return await self._submit(request, "single")

    async def _submit_multi(self, request: web.Request) -> web.StreamResponse:
        return await self._submit(request, "multi")

    async def _submit(self, request: web.Request, variant: str) -> web.StreamResponse:
        body = await self.json_body(request)
        check = wavespeed_schemas(self.docs)[variant] if self.docs is not None else None
        entry = self.record(request, "submit", body, auth_ok=self.bearer_ok(request), check=check)
        if not entry.auth_ok:
            return self._unauthorized()
        if entry.violations or not isinstance(body, dict):
            message = "; ".join(entry.violations) or "invalid body"
            return web.json_response(self.error_body(400, message, Outcome.http(400)), status=400)
        answer = await self.common(request, self.next_outcome("submit", Outcome.processing(1)))
        if isinstance(answer, web.StreamResponse):
            return answer
        if answer.kind is Kind.FAILED and answer.status >= 400:
            # An error inside HTTP 200: the envelope's own code says it.
            return web.json_response(self.error_body(answer.status, answer.message or "", answer))
        if variant == "multi":
            size = ratio_size(body.get("aspect_ratio"))
        else:
            size = self.reference_size(str(body.get("image", "")))
        job = Job(
            id=f"ws{self.new_id()}",
            polls=answer.polls,
            result=(answer.then or Outcome.success()) if answer.kind is Kind.PROCESSING else answer,
            size=size,
            fmt="png",
            count=1,
        )
        self.jobs[job.id] = job
        if answer.kind is Kind.PROCESSING:
            return self._envelope(job, "created")
        return self._terminal(job)

    async def _result(self, request: web.Request) -> web.StreamResponse:
        self.record(request, "poll", None, auth_ok=self.bearer_ok(request))
        if not self.bearer_ok(request):
            return self._unauthorized()
        job = self.jobs.get(request.match_info["id"])
        if job is None:
            return web.json_response(
                self.error_body(404, "prediction not found", Outcome.http(404)), status=404
            )
        answer = await self.common(
            request, self.next_outcome("poll", Outcome(Kind.PROCESSING, polls=-1))
        )
        if isinstance(answer, web.StreamResponse):
            return answer
        if answer.kind is Kind.PROCESSING and answer.polls == -1:
            if job.polls > 0:
                job.polls -= 1
                return self._envelope(job, "processing")
            return self._terminal(job)
        if answer.kind is Kind.PROCESSING:
            return self._envelope(job, "processing")
        job.result = answer
        return self._terminal(job)

    async def _upload(self, request: web.Request) -> web.StreamResponse:
        auth_ok = self.bearer_ok(request)
        data, mime = await self.multipart_file(request, "file")
        entry = self.record(
            request, "upload", {"file": len(data) if data else None}, auth_ok=auth_ok
        )
        if data is None:
            self.violations.append("upload: no multipart 'file' field")
            entry.violations.append("no file")
        if not auth_ok:
            return self._unauthorized()
        answer = await self.common(request, self.next_outcome("upload", Outcome.success()))
        if isinstance(answer, web.StreamResponse):
            return answer
        if data is None:
            return web.json_response(self.error_body(400, "file is required", answer), status=400)
        url = self.store_upload(data, mime)
        return web.json_response(
            {
                "code": 200,
                "message": "success",
                "data": {
                    "type": "image",
                    "download_url": url,
                    "filename": "reference",
                    "size": len(data),
                },
            }
        )

    def _envelope(
        self,
        job: Job,
        status: str,
        outputs: list[str] | None = None,
        nsfw: list[bool] | None = None,
        error: str = "",
    ) -> web.Response:
        return web.json_response(
            {
                "code": 200,
                "message": "success",
                "data": {
                    "id": job.id,
                    "model": MODEL,
                    "outputs": outputs or [],
                    "urls": {"get": f"{self.base_url}/api/v3/predictions/{job.id}/result"},
                    "has_nsfw_contents": nsfw or [],
                    "status": status,
                    "created_at": "2026-01-01T00:00:00.000Z",
                    "error": error,
                    "timings": {"inference": 2100 if status == "completed" else 0},
                },
            }
        )

    def _terminal(self, job: Job) -> web.Response:
        outcome = job.result
        if outcome.kind is Kind.FAILED:
            return self._envelope(job, "failed", error=outcome.message or "failed")
        urls = self.result_urls(job.size, job.fmt, job.count, outcome)
        flags = (list(outcome.nsfw or ()) + [False] * job.count)[: job.count]
        return self._envelope(job, "completed", outputs=urls, nsfw=flags)
