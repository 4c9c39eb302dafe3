"""WaveSpeed against its fake: routing to the single or multi model, uploads, polling."""

from __future__ import annotations

import itertools

import httpx
import pytest

from bot.generate import wait_for_result
from bot.models import AspectRatio
from bot.providers.base import Finished, GenerationRequest, Pending, Submitted
from bot.providers.errors import (
    AuthError,
    Moderated,
    ProviderError,
    RateLimited,
    UpstreamError,
)
from tests.fakes import FakeProvider, Outcome
from tests.providers.conftest import SteppingClock, provider_for, reference


async def test_one_reference_uses_the_single_model(
    wavespeed: FakeProvider, client: httpx.AsyncClient, clock: SteppingClock
) -> None:
    provider = provider_for(wavespeed, client, clock)
    request = GenerationRequest(prompt="ghibli", references=(reference(1600, 900),), seed=3)
    submitted = await provider.submit(request)
    assert isinstance(submitted, Submitted)
    (submit,) = [r for r in wavespeed.requests if r.endpoint == "submit"]
    assert submit.path == "/api/v3/wavespeed-ai/flux-kontext-max"
    assert submit.body["image"].startswith(wavespeed.base_url + "/cdn/upload-")
    assert "aspect_ratio" not in submit.body and submit.body["seed"] == 3
    assert submit.body["enable_safety_checker"] is True
    assert wavespeed.count("upload") == 1


async def test_explicit_other_ratio_goes_to_multi_with_one_image(
    wavespeed: FakeProvider, client: httpx.AsyncClient, clock: SteppingClock
) -> None:
    provider = provider_for(wavespeed, client, clock)
    request = GenerationRequest(
        prompt="x",
        references=(reference(1600, 900, url="https://x.example/a.png"),),
        aspect_ratio=AspectRatio.R9_16,
    )
    await provider.submit(request)
    (submit,) = [r for r in wavespeed.requests if r.endpoint == "submit"]
    assert submit.path.endswith("/multi")
    assert submit.body["images"] == ["https://x.example/a.png"]
    assert submit.body["aspect_ratio"] == "9:16"
    assert wavespeed.count("upload") == 0


async def test_several_references_go_to_multi_with_the_first_ratio(
    wavespeed: FakeProvider, client: httpx.AsyncClient, clock: SteppingClock
) -> None:
    provider = provider_for(wavespeed, client, clock)
    refs = (
        reference(400, 300),
        reference(100, 100),
        reference(90, 160, url="https://x.example/c.png"),
    )
    await provider.submit(GenerationRequest(prompt="x", references=refs))
    (body,) = wavespeed.bodies("submit")
    assert len(body["images"]) == 3 and body["aspect_ratio"] == "4:3"
    assert wavespeed.count("upload") == 2


async def test_polls_through_created_and_processing_never_faster_than_2s(
    wavespeed: FakeProvider, client: httpx.AsyncClient, clock: SteppingClock
) -> None:
    wavespeed.script("submit", Outcome.processing(polls=4))
    provider = provider_for(wavespeed, client, clock)
    submitted = await provider.submit(GenerationRequest(prompt="x", references=(reference(),)))
    assert isinstance(submitted, Submitted)
    result = await clock.run(
        wait_for_result(provider, submitted.handle, clock=clock, deadline_seconds=600)
    )
    assert isinstance(result, Finished) and result.handle == submitted.handle
    times = [wavespeed.times("submit")[0], *wavespeed.times("poll")]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert len(gaps) == 5
    assert min(gaps) >= 2.0
    assert gaps == sorted(gaps)  # backing off


async def test_poll_5xx_and_connection_drop_are_retried(
    wavespeed: FakeProvider, client: httpx.AsyncClient, clock: SteppingClock
) -> None:
    wavespeed.script("submit", Outcome.processing(polls=0))
    wavespeed.script("poll", Outcome.http(500), Outcome.drop())
    provider = provider_for(wavespeed, client, clock)
    submitted = await provider.submit(GenerationRequest(prompt="x", references=(reference(),)))
    assert isinstance(submitted, Submitted)
    assert isinstance(await clock.run(provider.poll(submitted.handle)), Finished)
    assert wavespeed.polls == 3 and wavespeed.submits == 1
    polls = wavespeed.times("poll")
    assert all(b - a >= 2.0 for a, b in itertools.pairwise(polls))


async def test_polls_give_up_after_the_attempt_budget(
    wavespeed: FakeProvider, client: httpx.AsyncClient, clock: SteppingClock
) -> None:
    wavespeed.script("submit", Outcome.processing(polls=0))
    wavespeed.script("poll", *[Outcome.http(503)] * 4)
    provider = provider_for(wavespeed, client, clock)
    submitted = await provider.submit(GenerationRequest(prompt="x", references=(reference(),)))
    assert isinstance(submitted, Submitted)
    with pytest.raises(UpstreamError, match="HTTP 503"):
        await clock.run(provider.poll(submitted.handle))
    assert wavespeed.polls == 4


@pytest.mark.parametrize(
    ("then", "error", "words"),
    [
        (Outcome.failed("NSFW content detected"), Moderated, "safety filter"),
        (Outcome.failed("internal inference error"), UpstreamError, "internal inference error"),
        (Outcome.nsfw_flags(True), Moderated, "safety filter"),
    ],
)
async def test_terminal_failures(
    wavespeed: FakeProvider,
    client: httpx.AsyncClient,
    clock: SteppingClock,
    then: Outcome,
    error: type[ProviderError],
    words: str,
) -> None:
    wavespeed.script("submit", Outcome.processing(polls=1, then=then))
    provider = provider_for(wavespeed, client, clock)
    submitted = await provider.submit(GenerationRequest(prompt="x", references=(reference(),)))
    assert isinstance(submitted, Submitted)
    assert isinstance(await provider.poll(submitted.handle), Pending)
    with pytest.raises(error, match=words):
        await provider.poll(submitted.handle)


async def test_submit_429_is_not_retried(
    wavespeed: FakeProvider, client: httpx.AsyncClient, clock: SteppingClock
) -> None:
    wavespeed.script("submit", Outcome.rate_limited(30))
    with pytest.raises(RateLimited) as caught:
        await provider_for(wavespeed, client, clock).submit(
            GenerationRequest(prompt="x", references=(reference(url="https://x.example/a.png"),))
        )
    assert caught.value.retry_after == 30 and wavespeed.submits == 1


async def test_upload_with_a_wrong_key_is_an_auth_error(
    wavespeed: FakeProvider, client: httpx.AsyncClient, clock: SteppingClock
) -> None:
    provider = provider_for(wavespeed, client, clock, wavespeed_api_key="nope")
    with pytest.raises(AuthError, match="WAVESPEED_API_KEY"):
        await provider.submit(GenerationRequest(prompt="x", references=(reference(),)))
    assert wavespeed.submits == 0


async def test_completed_at_submit_is_finished(
    wavespeed: FakeProvider, client: httpx.AsyncClient, clock: SteppingClock
) -> None:
    wavespeed.script("submit", Outcome.success())
    result = await provider_for(wavespeed, client, clock).submit(
        GenerationRequest(prompt="x", references=(reference(),))
    )
    assert isinstance(result, Finished) and result.outputs[0].url
