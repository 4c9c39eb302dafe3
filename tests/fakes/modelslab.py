"""A fake ModelsLab: ``img2img``, ``fetch/{id}`` and ``base64_to_url``, per its published page.

The key is checked in the JSON body. Like the real API, a missing ``width``/``height`` gives
512×512, a body that breaks the schema gets ``200 {"status": "error"}`` (and is recorded as a
violation), and failures arrive inside HTTP 200. The fake's own 200 answers are checked
against the page's response schemas too, so the fake cannot drift from the docs.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from aiohttp import web

from tests.fakes.schemas import modelslab_response_validator, modelslab_schemas
from tests.fakes.schemas import violations as schema_violations
from tests.fakes.server import FakeProvider, Job, Kind, Outcome

UPLOAD_LIMIT = 5 * 1024 * 1024  # base64_to_url: "supports max 5MB uploads"


class ModelsLabFake(FakeProvider):
    name = "modelslab"

    def routes(self, router: web.UrlDispatcher) -> None:
        router.add_post("/api/v6/images/img2img", self._submit)
        router.add_post("/api/v6/images/fetch/{id}", self._fetch)
        router.add_post("/api/v6/image_editing/base64_to_url", self._upload)

    def error_body(self, status: int, message: str, outcome: Outcome) -> dict[str, Any]:
        return {"status": "error", "message": message}

    def _check(self, name: str) -> Any:
        return modelslab_schemas(self.docs)[name] if self.docs is not None else None

    def _key_ok(self, body: Any) -> bool:
        return isinstance(body, dict) and body.get("key") == self.api_key

    def _unauthorized(self) -> web.Response:
        return web.json_response({"status": "error", "message": "Invalid API key"}, status=401)

    def _answer(self, payload: dict[str, Any], *, checked: bool = True) -> web.Response:
        if checked and self.docs is not None:
            problems = schema_violations(modelslab_response_validator(self.docs), payload)
            self.violations.extend(f"fake answer off-spec: {p}" for p in problems)
        return web.json_response(payload)

    async def _submit(self, request: web.Request) -> web.StreamResponse:
        body = await self.json_body(request)
        entry = self.record(
            request, "submit", body, auth_ok=self._key_ok(body), check=self._check("img2img")
        )
        if not entry.auth_ok:
            return self._unauthorized()
        if entry.violations:
            return self._answer({"status": "error", "message": "; ".join(entry.violations)})
        answer = await self.common(request, self.next_outcome("submit", Outcome.success()))
        if isinstance(answer, web.StreamResponse):
            return answer
        job = Job(
            id=self.new_id(),
            polls=answer.polls,
            result=(answer.then or Outcome.success()) if answer.kind is Kind.PROCESSING else answer,
            size=(int(body.get("width", 512)), int(body.get("height", 512))),
            fmt="png",
            count=int(body.get("samples", 1)),
        )
        self.jobs[job.id] = job
        if answer.kind is Kind.PROCESSING:
            return self._processing(job, answer)
        return self._terminal(job, body.get("seed"))

    async def _fetch(self, request: web.Request) -> web.StreamResponse:
        body = await self.json_body(request)
        entry = self.record(
            request, "poll", body, auth_ok=self._key_ok(body), check=self._check("fetch")
        )
        if not entry.auth_ok:
            return self._unauthorized()
        job = self.jobs.get(request.match_info["id"])
        if job is None:
            return self._answer({"status": "error", "message": "Request not found"})
        queued = self.next_outcome("poll", Outcome(Kind.PROCESSING, polls=-1))
        answer = await self.common(request, queued)
        if isinstance(answer, web.StreamResponse):
            return answer
        if answer.kind is Kind.PROCESSING and answer.polls == -1:  # nothing scripted
            if job.polls > 0:
                job.polls -= 1
                return self._processing(job, answer)
            return self._terminal(job, None)
        if answer.kind is Kind.PROCESSING:
            return self._processing(job, answer)
        job.result = answer
        return self._terminal(job, None)

    async def _upload(self, request: web.Request) -> web.StreamResponse:
        body = await self.json_body(request)
        entry = self.record(
            request, "upload", body, auth_ok=self._key_ok(body), check=self._check("upload")
        )
        if not entry.auth_ok:
            return self._unauthorized()
        answer = await self.common(request, self.next_outcome("upload", Outcome.success()))
        if isinstance(answer, web.StreamResponse):
            return answer
        if answer.kind is Kind.FAILED or entry.violations:
            return web.json_response(
                {"status": "error", "message": answer.message or "Invalid base64"}
            )
        head, _, payload = str(body["init_image"]).partition(",")
        try:
            data = base64.b64decode(payload, validate=True)
        except (binascii.Error, ValueError):
            self.violations.append("base64_to_url: payload is not base64")
            return web.json_response({"status": "error", "message": "Invalid base64"})
        if len(data) > UPLOAD_LIMIT:
            return web.json_response({"status": "error", "message": "File size exceeds 5MB"})
        url = self.store_upload(data, head.removeprefix("data:").split(";")[0])
        return web.json_response({"status": "success", "id": int(self.new_id()), "output": [url]})

    def _processing(self, job: Job, outcome: Outcome) -> web.Response:
        eta: Any = "12" if outcome.numbers_as_strings else 12
        return self._answer(
            {
                "status": "processing",
                "tip": "Get 20x faster image generation using enterprise dedicated GPU servers",
                "eta": eta,
                "message": "Request processing",
                "fetch_result": f"{self.base_url}/api/v6/images/fetch/{job.id}",
                "id": int(job.id),
                "output": [],
                "meta": {},
                "future_links": [
                    f"{self.base_url}/cdn/pending-{job.id}-{i}.png" for i in range(job.count)
                ],
                "proxy_links": [],
            },
            checked=not outcome.numbers_as_strings,
        )

    def _terminal(self, job: Job, seed: Any) -> web.Response:
        outcome = job.result
        if outcome.kind is Kind.FAILED:
            field = "messege" if outcome.legacy_typo else "message"
            payload: dict[str, Any] = {"status": "error", field: outcome.message or "Failed"}
            if outcome.retry_after is not None:
                payload["retry_after"] = outcome.retry_after
            return web.json_response(payload)
        urls = self.result_urls(job.size, job.fmt, job.count, outcome)
        strings = outcome.numbers_as_strings
        return self._answer(
            {
                "status": "success",
                "generationTime": "3.2" if strings else 3.2,
                "id": job.id if strings else int(job.id),
                "output": urls,
                "proxy_links": urls,
                "meta": {"seed": seed if seed is not None else 4242, "width": job.size[0]},
                "nsfw_content_detected": any(outcome.nsfw or ()),
            },
            checked=not strings,
        )
