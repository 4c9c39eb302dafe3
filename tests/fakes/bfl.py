"""A fake Black Forest Labs API: submit to ``/v1/flux-kontext-{pro,max}``, poll ``polling_url``.

* ``x-key`` auth; 401 ``{"detail": "Not authenticated"}`` otherwise.
* Bodies are checked against ``FluxKontextProInputs`` (from the notes' table); a violation
  gets the FastAPI 422 ``{"detail": [{loc, msg, type}]}`` and is recorded. With
  :attr:`BflFake.strict_tolerance` (the default) a ``safety_tolerance`` above 2 with an input
  image is refused too, the stricter of the two readings in the notes.
* The ``polling_url`` names a second listening port (another "host"): a client that rebuilds
  the URL from its base polls the submit port, which is recorded as a violation.
* Poll statuses: ``Pending`` (with ``progress``) → ``Ready`` with ``result.sample``. A job
  scripted with ``Outcome.failed(status)`` ends with that status word (``Request Moderated``,
  ``Content Moderated`` with ``details``, ``Error``, ``Failed``); an unknown id answers
  ``Task not found``.
* Active tasks (submitted, not finished) are counted: above 24, or 6 on [max], submit is 429.
* ``result.sample`` expires 10 minutes (injected clock) after it was made: 403 afterwards.
* ``GET /v1/credits`` answers ``{"credits": …}``.
"""

from __future__ import annotations

from typing import Any, Self
from urllib.parse import urlencode

from aiohttp import web

from tests.fakes.noteschemas import bfl_schemas
from tests.fakes.server import FakeProvider, Job, Kind, Outcome, ratio_size

ACTIVE_LIMIT = 24
MAX_ACTIVE_LIMIT = 6


class BflFake(FakeProvider):
    name = "bfl"
    key_env = "BFL_API_KEY"
    result_ttl = 600.0
    expired_status = 403

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.poll_port = 0
        self.credits = 1234.0
        self.strict_tolerance = True
        self.models: dict[str, str] = {}  # job id -> model

    async def start(self) -> Self:
        await super().start()
        assert self._runner is not None
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None
        self.poll_port = server.sockets[0].getsockname()[1]
        return self

    @property
    def poll_base(self) -> str:
        return f"http://127.0.0.1:{self.poll_port}"

    def routes(self, router: web.UrlDispatcher) -> None:
        router.add_post("/v1/flux-kontext-pro", self._submit)
        router.add_post("/v1/flux-kontext-max", self._submit)
        router.add_get("/v1/get_result", self._poll)
        router.add_get("/v1/credits", self._credits)

    def error_body(self, status: int, message: str, outcome: Outcome) -> dict[str, Any]:
        return {"detail": message}

    def _key_ok(self, request: web.Request) -> bool:
        return request.headers.get("x-key") == self.api_key

    def _unauthorized(self) -> web.Response:
        return web.json_response({"detail": "Not authenticated"}, status=401)

    def active(self, model: str | None = None) -> int:
        return sum(
            1
            for job_id, job in self.jobs.items()
            if job.polls >= 0 and (model is None or self.models.get(job_id) == model)
        )

    async def _submit(self, request: web.Request) -> web.StreamResponse:
        body = await self.json_body(request)
        check = bfl_schemas(self.docs)["submit"] if self.docs is not None else None
        entry = self.record(request, "submit", body, auth_ok=self._key_ok(request), check=check)
        if not entry.auth_ok:
            return self._unauthorized()
        problems = list(entry.violations)
        if isinstance(body, dict) and self.strict_tolerance and body.get("input_image"):
            tolerance = body.get("safety_tolerance")
            if isinstance(tolerance, int) and tolerance > 2:
                problems.append("safety_tolerance: at most 2 with an input image")
                self.violations.append(f"POST {request.path}: {problems[-1]}")
        if problems or not isinstance(body, dict):
            detail = [
                {"loc": ["body", p.split(":")[0]], "msg": p, "type": "value_error"}
                for p in problems or ["body: not an object"]
            ]
            return web.json_response({"detail": detail}, status=422)
        model = request.path.rsplit("/", 1)[-1]
        limit = MAX_ACTIVE_LIMIT if model == "flux-kontext-max" else ACTIVE_LIMIT
        if self.active() >= ACTIVE_LIMIT or self.active(model) >= limit:
            return web.json_response({"detail": "Too many active tasks"}, status=429)
        answer = await self.common(request, self.next_outcome("submit", Outcome.processing(1)))
        if isinstance(answer, web.StreamResponse):
            return answer
        pending = answer.kind is Kind.PROCESSING
        job = Job(
            id=f"bfl-{self.new_id()}",
            polls=answer.polls if pending else 0,
            result=(answer.then or Outcome.success()) if pending else answer,
            size=ratio_size(body.get("aspect_ratio")),
            fmt=str(body.get("output_format") or "png"),
            count=1,
        )
        self.jobs[job.id] = job
        self.models[job.id] = model
        query = urlencode({"id": job.id})
        return web.json_response(
            {
                "id": job.id,
                "polling_url": f"{self.poll_base}/v1/get_result?{query}",
                "cost": 8.0 if model == "flux-kontext-max" else 4.0,
                "input_mp": 1.0 if body.get("input_image") else None,
                "output_mp": 1.04,
            }
        )

    async def _poll(self, request: web.Request) -> web.StreamResponse:
        entry = self.record(request, "poll", None, auth_ok=self._key_ok(request))
        if request.url.port != self.poll_port:
            message = "polled the submit host instead of the polling_url it was given"
            entry.violations.append(message)
            self.violations.append(f"GET {request.path}: {message}")
        if not entry.auth_ok:
            return self._unauthorized()
        job_id = request.query.get("id")
        if not job_id:
            detail = [{"loc": ["query", "id"], "msg": "Field required", "type": "missing"}]
            return web.json_response({"detail": detail}, status=422)
        answer = await self.common(
            request, self.next_outcome("poll", Outcome(Kind.PROCESSING, polls=-1))
        )
        if isinstance(answer, web.StreamResponse):
            return answer
        job = self.jobs.get(job_id)
        if job is None:
            return self._state(job_id, "Task not found")
        if job.polls > 0:
            job.polls -= 1
            return self._state(job.id, "Pending", progress=0.5)
        job.polls = -1  # finished: no longer an active task
        outcome = job.result
        if outcome.kind is Kind.FAILED:
            status = outcome.message or "Error"
            details = {"Moderation Reasons": ["Derivative Works Filter"]}
            return self._state(job.id, status, details=details if "Moderated" in status else None)
        (url,) = self.result_urls(job.size, job.fmt, 1, outcome)
        sample = f"{url}?se=expiring&sig=abc"
        return self._state(job.id, "Ready", result={"sample": sample, "seed": 42})

    def _state(self, job_id: str, status: str, **fields: Any) -> web.Response:
        body: dict[str, Any] = {
            "id": job_id,
            "status": status,
            "result": None,
            "progress": None,
            "details": None,
            "preview": None,
        }
        body.update(fields)
        return web.json_response(body)

    async def _credits(self, request: web.Request) -> web.StreamResponse:
        self.record(request, "credits", None, auth_ok=self._key_ok(request))
        if not self._key_ok(request):
            return self._unauthorized()
        return web.json_response({"credits": self.credits})
