"""A fake Replicate: predictions for the Kontext models, ``Prefer: wait``, polling, cancel, files.

* ``Authorization: Bearer …``; 401 problem JSON otherwise.
* ``POST /v1/models/{owner}/{name}/predictions`` and ``POST /v1/predictions`` (``version``:
  the multi-image app's pinned version, else 422 "Invalid version") are checked against the
  notes' tables; a violation gets 422 ``Input validation failed`` with ``invalid_fields`` and is
  recorded. With :attr:`ReplicateFake.strict_tolerance` (default) ``safety_tolerance`` above 2
  with an image is refused as well.
* ``Prefer: wait`` answers the finished prediction in the POST when the scripted job needs no
  polls; otherwise ``starting`` with a ``Location`` header, then ``processing`` on polls.
* Job results: success (``output`` one URL, or a list with :attr:`output_list`),
  ``Outcome.failed(message)`` → ``failed`` with ``error`` (E005 for moderation), and
  ``canceled`` after ``POST …/cancel``.
* Errors as documented: ``Outcome.http(402)`` insufficient credit, ``Outcome.http(422)``,
  ``Outcome.rate_limited(30, where="text")`` → 429 "…resets in ~30s." with no header.
* Output files are deleted after an hour (injected clock): 404 afterwards.
* ``POST /v1/files`` (multipart ``content``) and ``GET /v1/account``.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from tests.fakes.noteschemas import replicate_schemas
from tests.fakes.server import FakeProvider, Job, Kind, Outcome, ratio_size

MULTI_VERSION = "6d14f9b3d25a9400c4a5e5f0f6842ae7537fefcf68df86dad9533f66204f2bb2"


class ReplicateFake(FakeProvider):
    name = "replicate"
    key_env = "REPLICATE_API_TOKEN"
    result_ttl = 3600.0

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.output_list = False
        self.strict_tolerance = True
        self.waits: list[str | None] = []  # the Prefer header of each create
        self.cancelled: set[str] = set()
        self.models: dict[str, str] = {}
        self._made: dict[str, list[str]] = {}

    def routes(self, router: web.UrlDispatcher) -> None:
        router.add_post("/v1/models/{owner}/{name}/predictions", self._create_model)
        router.add_post("/v1/predictions", self._create_version)
        router.add_get("/v1/predictions/{id}", self._get)
        router.add_post("/v1/predictions/{id}/cancel", self._cancel)
        router.add_post("/v1/files", self._files_upload)
        router.add_get("/v1/account", self._account)

    def error_body(self, status: int, message: str, outcome: Outcome) -> dict[str, Any]:
        if status == 402:
            return {
                "title": "Insufficient credit",
                "detail": "You have insufficient credit to run this model. Go to "
                "https://replicate.com/account/billing#billing to purchase credit.",
                "status": 402,
            }
        if status == 429:
            wait = outcome.retry_after if outcome.retry_after is not None else 30
            return {"detail": f"Request was throttled. Your rate limit resets in ~{wait:g}s."}
        return {"title": message, "detail": message, "status": status}

    def _problem(self, status: int, title: str, detail: str, **extra: Any) -> web.Response:
        return web.json_response(
            {"title": title, "detail": detail, "status": status, **extra}, status=status
        )

    def _key_ok(self, request: web.Request) -> bool:
        return self.bearer_ok(request)

    def _unauthorized(self) -> web.Response:
        return self._problem(
            401, "Unauthenticated", "You did not pass a valid authentication token"
        )

    async def _create_model(self, request: web.Request) -> web.StreamResponse:
        model = f"{request.match_info['owner']}/{request.match_info['name']}"
        return await self._create(request, model)

    async def _create_version(self, request: web.Request) -> web.StreamResponse:
        return await self._create(request, "multi")

    async def _create(self, request: web.Request, model: str) -> web.StreamResponse:
        body = await self.json_body(request)
        schemas = replicate_schemas(self.docs) if self.docs is not None else {}
        entry = self.record(
            request, "submit", body, auth_ok=self._key_ok(request), check=schemas.get(model)
        )
        self.waits.append(request.headers.get("Prefer"))
        if not entry.auth_ok:
            return self._unauthorized()
        if model != "multi" and self.docs is not None and model not in schemas:
            return self._problem(404, "Not found", f"Model {model} not found")
        if model == "multi" and isinstance(body, dict) and body.get("version") != MULTI_VERSION:
            self.violations.append("POST /v1/predictions: unknown version")
            return self._problem(
                422,
                "Invalid version or not permitted",
                "The specified version does not exist (or perhaps you don't have permission "
                "to use it?)",
            )
        problems = list(entry.violations)
        inputs = body.get("input") if isinstance(body, dict) else None
        if isinstance(inputs, dict) and self.strict_tolerance:
            has_image = any(k.startswith("input_image") for k in inputs)
            tolerance = inputs.get("safety_tolerance")
            if has_image and isinstance(tolerance, int) and tolerance > 2:
                problems.append("input/safety_tolerance: at most 2 with an input image")
                self.violations.append(f"POST {request.path}: {problems[-1]}")
        if problems or not isinstance(inputs, dict):
            fields = [
                {"type": "invalid", "field": p.split(":")[0], "description": p}
                for p in problems or ["input: required"]
            ]
            return self._problem(
                422,
                "Input validation failed",
                "".join(f"- {p}\n" for p in problems),
                invalid_fields=fields,
            )
        answer = await self.common(request, self.next_outcome("submit", Outcome.processing(1)))
        if isinstance(answer, web.StreamResponse):
            return answer
        pending = answer.kind is Kind.PROCESSING
        job = Job(
            id=f"gm3qorzdhgbfurv{self.new_id()}",
            polls=answer.polls if pending else 0,
            result=(answer.then or Outcome.success()) if pending else answer,
            size=self._size(inputs),
            fmt="jpeg" if inputs.get("output_format") == "jpg" else "png",
            count=1,
        )
        self.jobs[job.id] = job
        self.models[job.id] = model
        wait = request.headers.get("Prefer", "").startswith("wait")
        if wait and job.polls == 0:
            return web.json_response(self._finish(job), status=201)
        location = {"Location": f"{self.base_url}/v1/predictions/{job.id}"}
        return web.json_response(self._prediction(job, "starting"), status=201, headers=location)

    def _size(self, inputs: dict[str, Any]) -> tuple[int, int]:
        ratio = inputs.get("aspect_ratio")
        if isinstance(ratio, str) and ratio[:1].isdigit():
            return ratio_size(ratio)
        first = inputs.get("input_image") or inputs.get("input_image_1")
        return self.reference_size(first) if isinstance(first, str) else ratio_size("1:1")

    def _prediction(self, job: Job, status: str, **fields: Any) -> dict[str, Any]:
        base = f"{self.base_url}/v1/predictions/{job.id}"
        body: dict[str, Any] = {
            "id": job.id,
            "model": self.models.get(job.id, ""),
            "version": "hidden",
            "input": {},
            "logs": "",
            "output": None,
            "data_removed": False,
            "error": None,
            "status": status,
            "source": "api",
            "created_at": "2026-07-14T09:12:03.221Z",
            "started_at": None,
            "completed_at": None,
            "metrics": {},
            "urls": {
                "web": f"https://replicate.com/p/{job.id}",
                "get": base,
                "cancel": f"{base}/cancel",
            },
        }
        body.update(fields)
        return body

    def _finish(self, job: Job) -> dict[str, Any]:
        """The terminal prediction of ``job`` (made once, then kept)."""
        job.polls = -1
        if job.id in self.cancelled:
            return self._prediction(job, "canceled")
        outcome = job.result
        if outcome.kind is Kind.FAILED:
            return self._prediction(job, "failed", error=outcome.message)
        if job.id not in self._made:
            self._made[job.id] = self.result_urls(job.size, job.fmt, 1, outcome)
        urls = self._made[job.id]
        metrics = {"predict_time": 6.47, "total_time": 6.65}
        output: Any = urls if self.output_list else urls[0]
        return self._prediction(job, "succeeded", output=output, metrics=metrics)

    async def _get(self, request: web.Request) -> web.StreamResponse:
        self.record(request, "poll", None, auth_ok=self._key_ok(request))
        if not self._key_ok(request):
            return self._unauthorized()
        job = self.jobs.get(request.match_info["id"])
        if job is None:
            return self._problem(404, "Not found", "Prediction not found")
        answer = await self.common(
            request, self.next_outcome("poll", Outcome(Kind.PROCESSING, polls=-1))
        )
        if isinstance(answer, web.StreamResponse):
            return answer
        if answer.kind is Kind.FAILED:  # a status these notes call unverified, e.g. aborted
            return web.json_response(self._prediction(job, answer.message or "aborted"))
        if job.polls > 0 and job.id not in self.cancelled:
            job.polls -= 1
            return web.json_response(self._prediction(job, "processing"))
        return web.json_response(self._finish(job))

    async def _cancel(self, request: web.Request) -> web.StreamResponse:
        self.record(request, "cancel", None, auth_ok=self._key_ok(request))
        if not self._key_ok(request):
            return self._unauthorized()
        job = self.jobs.get(request.match_info["id"])
        if job is None:
            return self._problem(404, "Not found", "Prediction not found")
        if job.polls > 0:
            self.cancelled.add(job.id)
        return web.json_response(self._finish(job))

    async def _files_upload(self, request: web.Request) -> web.StreamResponse:
        auth_ok = self._key_ok(request)
        data, mime = await self.multipart_file(request, "content")
        entry = self.record(
            request, "upload", {"content": len(data) if data else None}, auth_ok=auth_ok
        )
        if data is None:
            entry.violations.append("no multipart 'content' field")
            self.violations.append("POST /v1/files: no multipart 'content' field")
        if not auth_ok:
            return self._unauthorized()
        if data is None:
            return self._problem(422, "Input validation failed", "content is required")
        url = self.store_upload(data, mime)
        file_id = url.rsplit("/", 1)[-1]
        return web.json_response(
            {"id": file_id, "size": len(data), "content_type": mime, "urls": {"get": url}},
            status=201,
        )

    async def _account(self, request: web.Request) -> web.StreamResponse:
        self.record(request, "account", None, auth_ok=self._key_ok(request))
        if not self._key_ok(request):
            return self._unauthorized()
        return web.json_response({"type": "user", "username": "kontext-tests", "name": "Tests"})
