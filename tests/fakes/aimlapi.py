"""A fake AIML API: ``POST /v1/images/generations`` (synchronous), per its published page.

Like the real API it falls back to 16:9 when ``aspect_ratio`` is missing, so a request that
forgets the ratio gets the wrong shape back. Bodies are validated against the page's JSON
schema (image-to-image) or the schema derived from it (text-to-image); an invalid body gets
the provider's ``400 Body validation error!`` and is recorded as a violation.
"""

from __future__ import annotations

import base64
from typing import Any

from aiohttp import web

from tests.fakes.schemas import aimlapi_schemas
from tests.fakes.server import FakeProvider, Kind, Outcome, ratio_size, render


class AimlApiFake(FakeProvider):
    name = "aimlapi"

    def routes(self, router: web.UrlDispatcher) -> None:
        router.add_post("/v1/images/generations", self._generate)

    def error_body(self, status: int, message: str, outcome: Outcome) -> dict[str, Any]:
        return {
            "message": message,
            "path": "/v1/images/generations",
            "requestId": f"req-{self.new_id()}",
            "statusCode": status,
            "timestamp": "2026-01-01T00:00:00.000Z",
        }

    async def _generate(self, request: web.Request) -> web.StreamResponse:
        body = await self.json_body(request)
        auth_ok = self.bearer_ok(request)
        check = None
        if self.docs is not None and isinstance(body, dict):
            schemas = aimlapi_schemas(self.docs)
            check = schemas.get(str(body.get("model")))
            if check is None:
                self.violations.append(f"unknown model {body.get('model')!r}")
        entry = self.record(request, "submit", body, auth_ok=auth_ok, check=check)
        if not auth_ok:
            return web.json_response(
                self.error_body(401, "Invalid API key", Outcome.http(401)), status=401
            )
        if entry.violations or not isinstance(body, dict):
            return web.json_response(
                self.error_body(400, "Body validation error!", Outcome.http(400)), status=400
            )
        answer = await self.common(request, self.next_outcome("submit", Outcome.success()))
        if isinstance(answer, web.StreamResponse):
            return answer
        if answer.kind is Kind.FAILED:
            return web.json_response(self.error_body(answer.status, answer.message or "", answer))
        return web.json_response(self.result(body, answer))

    def result(self, body: dict[str, Any], outcome: Outcome) -> dict[str, Any]:
        size = ratio_size(body.get("aspect_ratio", "16:9"))
        fmt = body.get("output_format", "jpeg")
        count = int(body.get("num_images", 1))
        flags = list(outcome.nsfw or ()) + [False] * count
        seed = body.get("seed", 1415518620)
        if outcome.shape == "data":
            if outcome.b64:
                items = [
                    {"url": None, "b64_json": base64.b64encode(render(size, fmt, i)).decode()}
                    for i in range(count)
                ]
            else:
                items = [
                    {"url": u, "b64_json": None}
                    for u in self.result_urls(size, fmt, count, outcome)
                ]
            meta = {
                "usage": {"credits_used": outcome.credits if outcome.credits is not None else 84000}
            }
            return {"data": items, "meta": meta}
        images = [
            {
                "url": u,
                "content_type": f"image/{fmt}",
                "file_name": None,
                "file_size": None,
                "width": size[0],
                "height": size[1],
            }
            for u in self.result_urls(size, fmt, count, outcome)
        ]
        return {
            "images": images,
            "timings": {},
            "seed": seed,
            "has_nsfw_concepts": flags[:count],
            "prompt": body.get("prompt"),
        }
