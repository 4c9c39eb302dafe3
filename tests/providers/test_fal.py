"""fal.ai against its fake: endpoints per request, queue URLs as given, errors and cancel."""

from __future__ import annotations

import json

import httpx
import pytest

from bot.models import AspectRatio
from bot.providers.base import Finished, GenerationRequest, Pending, Submitted
from bot.providers.errors import (
    AuthError,
    CreditsExhausted,
    InvalidInput,
    Moderated,
    ProviderError,
    UnsupportedRequest,
    UpstreamError,
)
from tests.fakes import FakeProvider, Outcome
from tests.providers.conftest import SteppingClock, provider_for, reference


async def _submitted(provider: object, request: GenerationRequest) -> Submitted:
    result = await provider.submit(request)  # type: ignore[attr-defined]
    assert isinstance(result, Submitted)
    return result


async def test_one_reference_goes_to_the_edit_endpoint(
    fal: FakeProvider, client: httpx.AsyncClient, clock: SteppingClock
) -> None:
    provider = provider_for(fal, client, clock)
    request = GenerationRequest(
        prompt="a donut", references=(reference(1600, 900),), safety_tolerance=3, guidance=4
    )
    await _submitted(provider, request)
    (submit,) = [r for r in fal.requests if r.endpoint == "submit"]
    assert submit.path == "/fal-ai/flux-pro/kontext/max"
    body = submit.body
    assert body["image_url"].startswith("data:image/png;base64,")
    assert body["safety_tolerance"] == "3"  # a string enum
    assert body["guidance_scale"] == 4 and "aspect_ratio" not in body  # follows the input


async def test_several_references_and_text_to_image_endpoints(
    fal: FakeProvider, client: httpx.AsyncClient, clock: SteppingClock
) -> None:
    provider = provider_for(fal, client, clock)
    refs = (reference(400, 300), reference(url="https://cdn.discordapp.com/b.png"))
    await _submitted(provider, GenerationRequest(prompt="merge", references=refs))
    await _submitted(provider, GenerationRequest(prompt="a fox", num_images=2))
    multi, text = [r for r in fal.requests if r.endpoint == "submit"]
    assert multi.path == "/fal-ai/flux-pro/kontext/max/multi"
    assert multi.body["image_urls"][1] == "https://cdn.discordapp.com/b.png"
    assert multi.body["aspect_ratio"] == "4:3"
    assert text.path == "/fal-ai/flux-pro/kontext/max/text-to-image"
    assert text.body["aspect_ratio"] == "1:1" and text.body["num_images"] == 2


async def test_pro_and_dev_models(
    fal: FakeProvider, client: httpx.AsyncClient, clock: SteppingClock
) -> None:
    pro = provider_for(fal, client, clock, fal_model="pro")
    await _submitted(pro, GenerationRequest(prompt="x", references=(reference(),)))
    dev = provider_for(fal, client, clock, fal_model="dev")
    request = GenerationRequest(
        prompt="x", references=(reference(),), aspect_ratio=AspectRatio.R9_16, safety_tolerance=4
    )
    await _submitted(dev, request)
    first, second = [r for r in fal.requests if r.endpoint == "submit"]
    assert first.path == "/fal-ai/flux-pro/kontext"
    assert second.path == "/fal-ai/flux-kontext/dev"
    assert second.body["resolution_mode"] == "9:16"
    assert second.body["enable_safety_checker"] is True
    assert "safety_tolerance" not in second.body
    with pytest.raises(UnsupportedRequest, match="no text-to-image model"):
        await dev.submit(GenerationRequest(prompt="a fox"))
    with pytest.raises(UnsupportedRequest, match=r"fal\.ai takes at most 1 reference"):
        await dev.submit(GenerationRequest(prompt="x", references=(reference(),) * 2))


async def test_queue_urls_are_used_as_given(
    fal: FakeProvider, client: httpx.AsyncClient, clock: SteppingClock
) -> None:
    fal.script("submit", Outcome.processing(polls=2))
    provider = provider_for(fal, client, clock)
    submitted = await _submitted(provider, GenerationRequest(prompt="x", references=(reference(),)))
    urls = json.loads(submitted.handle)
    assert urls["status"].endswith("/status") and "/fal-ai/flux-pro/requests/" in urls["status"]
    queued = await provider.poll(submitted.handle)
    assert isinstance(queued, Pending) and queued.status == "IN_QUEUE (1 ahead)"
    running = await provider.poll(submitted.handle)
    assert isinstance(running, Pending) and running.status == "IN_PROGRESS"
    done = await provider.poll(submitted.handle)
    assert isinstance(done, Finished) and done.seed == 2718281
    paths = [r.path for r in fal.requests if r.endpoint in ("poll", "result")]
    assert all(p.startswith("/fal-ai/flux-pro/requests/") for p in paths)
    assert fal.count("result") == 1


@pytest.mark.parametrize(
    ("then", "error", "words"),
    [
        (Outcome.failed("content_policy_violation"), Moderated, "safety filter"),
        (Outcome.nsfw_flags(True), Moderated, "safety filter"),
        (Outcome.failed("runner disconnected"), UpstreamError, "HTTP 500"),
        (Outcome.http(422, "image could not be decoded"), InvalidInput, "could not be decoded"),
    ],
)
async def test_completed_may_still_be_a_failure(
    fal: FakeProvider,
    client: httpx.AsyncClient,
    clock: SteppingClock,
    then: Outcome,
    error: type[ProviderError],
    words: str,
) -> None:
    fal.script("submit", Outcome.processing(polls=0, then=then))
    provider = provider_for(fal, client, clock)
    submitted = await _submitted(provider, GenerationRequest(prompt="x", references=(reference(),)))
    with pytest.raises(error, match=words):
        await clock.run(provider.poll(submitted.handle))


async def test_inline_images_need_no_download(
    fal: FakeProvider, client: httpx.AsyncClient, clock: SteppingClock
) -> None:
    fal.script("submit", Outcome.processing(polls=0, then=Outcome.success(b64=True)))
    provider = provider_for(fal, client, clock)
    submitted = await _submitted(provider, GenerationRequest(prompt="x"))
    done = await provider.poll(submitted.handle)
    assert isinstance(done, Finished) and done.outputs[0].data
    assert done.outputs[0].data.startswith(b"\x89PNG")


@pytest.mark.parametrize(
    ("outcome", "error", "words"),
    [
        (
            Outcome.http(
                403,
                "User is locked. Reason: Exhausted balance. Top up your balance at "
                "fal.ai/dashboard/billing.",
            ),
            CreditsExhausted,
            "out of credits",
        ),
        (Outcome.http(403, "User is locked. Reason: TOP_UP."), CreditsExhausted, "credits"),
        (
            Outcome.http(403, "User is locked. Reason: Admin lock. Please contact support@fal.ai"),
            AuthError,
            "locked this account",
        ),
        (Outcome.http(401, "Invalid key"), AuthError, "FAL_KEY"),
        (Outcome.http(422, "prompt is required"), InvalidInput, "prompt is required"),
        (Outcome.http(503, "runner_scheduling_failure"), UpstreamError, "HTTP 503"),
    ],
)
async def test_submit_errors(
    fal: FakeProvider,
    client: httpx.AsyncClient,
    clock: SteppingClock,
    outcome: Outcome,
    error: type[ProviderError],
    words: str,
) -> None:
    fal.script("submit", outcome)
    with pytest.raises(error, match=words):
        await provider_for(fal, client, clock).submit(GenerationRequest(prompt="x"))
    assert fal.submits == 1


async def test_content_policy_is_read_from_its_type(
    fal: FakeProvider, client: httpx.AsyncClient, clock: SteppingClock
) -> None:
    moderated = Outcome.failed("content_policy_violation")
    fal.script("submit", Outcome.processing(polls=0, then=moderated))
    provider = provider_for(fal, client, clock)
    submitted = await _submitted(provider, GenerationRequest(prompt="x"))
    with pytest.raises(Moderated) as caught:
        await provider.poll(submitted.handle)
    assert caught.value.detail == "HTTP 422: content_policy_violation"


async def test_cancel_while_queued_and_after_completion(
    fal: FakeProvider, client: httpx.AsyncClient, clock: SteppingClock
) -> None:
    fal.script("submit", Outcome.processing(polls=3), Outcome.processing(polls=0))
    provider = provider_for(fal, client, clock)
    waiting = await _submitted(provider, GenerationRequest(prompt="x"))
    assert await provider.cancel(waiting.handle) is True
    with pytest.raises(InvalidInput, match="cancelled"):
        await provider.poll(waiting.handle)
    done = await _submitted(provider, GenerationRequest(prompt="y"))
    assert isinstance(await provider.poll(done.handle), Finished)
    assert await provider.cancel(done.handle) is False


async def test_a_foreign_handle_is_refused(
    fal: FakeProvider, client: httpx.AsyncClient, clock: SteppingClock
) -> None:
    evil = "https://evil.example/fal-ai/flux-pro/requests/1"
    handle = json.dumps({"status": f"{evil}/status", "result": evil, "cancel": f"{evil}/cancel"})
    with pytest.raises(ProviderError, match="cannot be followed"):
        await provider_for(fal, client, clock).poll(handle)
    assert fal.requests == []


@pytest.mark.parametrize("status", ["FAILED", "CANCELED"])
async def test_statuses_fal_js_does_not_list_end_the_job(
    fal: FakeProvider, client: httpx.AsyncClient, clock: SteppingClock, status: str
) -> None:
    fal.script("submit", Outcome.processing(polls=3))
    fal.script("poll", Outcome.failed(status))
    provider = provider_for(fal, client, clock)
    submitted = await _submitted(provider, GenerationRequest(prompt="x"))
    with pytest.raises(ProviderError, match="Request failed") as caught:
        await provider.poll(submitted.handle)
    assert not caught.value.retryable and fal.count("result") == 0
