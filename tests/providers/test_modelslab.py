"""ModelsLab against its fake: size mapping, uploads, processing and polling, errors in 200."""

from __future__ import annotations

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
    RateLimited,
    UpstreamError,
)
from bot.providers.modelslab import output_size
from tests.fakes import FakeProvider, Outcome
from tests.providers.conftest import SteppingClock, provider_for, reference


@pytest.mark.parametrize(
    ("ratio", "size"),
    [
        (AspectRatio.R1_1, (1024, 1024)),
        (AspectRatio.R16_9, (1024, 576)),
        (AspectRatio.R9_16, (576, 1024)),
        (AspectRatio.R4_3, (1024, 768)),
        (AspectRatio.R3_2, (1024, 688)),
        (AspectRatio.R2_3, (688, 1024)),
        (AspectRatio.R21_9, (1024, 432)),
        (AspectRatio.R9_21, (432, 1024)),
    ],
)
def test_output_size_long_side_1024_multiple_of_16(
    ratio: AspectRatio, size: tuple[int, int]
) -> None:
    assert output_size(ratio) == size
    assert all(side % 16 == 0 and side <= 1024 for side in size)


async def test_local_bytes_are_uploaded_then_sized_by_the_first_reference(
    modelslab: FakeProvider, client: httpx.AsyncClient, clock: SteppingClock
) -> None:
    request = GenerationRequest(
        prompt="swap",
        references=(reference(900, 1600), reference(64, 64, url="https://x.example/b.png")),
    )
    result = await provider_for(modelslab, client, clock).submit(request)
    assert isinstance(result, Finished)
    assert modelslab.count("upload") == 1
    (body,) = modelslab.bodies("submit")
    assert body["init_image"].startswith(modelslab.base_url + "/cdn/upload-")
    assert body["init_image_2"] == "https://x.example/b.png"
    assert (body["width"], body["height"]) == (576, 1024)
    assert body["model_id"] == "flux-kontext-dev" and body["safety_checker"] is True
    assert "strength" not in body and "num_inference_steps" not in body


async def test_options_are_mapped(
    modelslab: FakeProvider, client: httpx.AsyncClient, clock: SteppingClock
) -> None:
    request = GenerationRequest(
        prompt="x",
        references=(reference(url="https://x.example/a.png"),),
        seed=11,
        guidance=4.0,
        num_images=3,
        aspect_ratio=AspectRatio.R4_3,
    )
    result = await provider_for(modelslab, client, clock).submit(request)
    assert isinstance(result, Finished)
    (body,) = modelslab.bodies("submit")
    assert (body["samples"], body["seed"], body["guidance"]) == (3, 11, 4.0)
    assert (body["width"], body["height"]) == (1024, 768)
    assert len(result.outputs) == 3 and result.seed == 11
    assert modelslab.count("upload") == 0


async def test_processing_then_polled_to_success(
    modelslab: FakeProvider, client: httpx.AsyncClient, clock: SteppingClock
) -> None:
    modelslab.script("submit", Outcome.processing(polls=2))
    provider = provider_for(modelslab, client, clock)
    submitted = await provider.submit(GenerationRequest(prompt="x", references=(reference(),)))
    assert isinstance(submitted, Submitted) and submitted.eta_seconds == 12
    states = [await provider.poll(submitted.handle) for _ in range(3)]
    assert [type(s) for s in states] == [Pending, Pending, Finished]
    assert modelslab.submits == 1 and modelslab.polls == 3
    assert all(b == {"key": modelslab.api_key} for b in modelslab.bodies("poll"))


async def test_numbers_as_strings_are_read(
    modelslab: FakeProvider, client: httpx.AsyncClient, clock: SteppingClock
) -> None:
    modelslab.script(
        "submit", Outcome.processing(polls=0, then=Outcome.success(numbers_as_strings=True))
    )
    modelslab.script("poll", Outcome.success(numbers_as_strings=True))
    provider = provider_for(modelslab, client, clock)
    submitted = await provider.submit(GenerationRequest(prompt="x", references=(reference(),)))
    assert isinstance(submitted, Submitted)
    assert isinstance(await provider.poll(submitted.handle), Finished)


@pytest.mark.parametrize("legacy", [False, True])
async def test_error_inside_200(
    modelslab: FakeProvider, client: httpx.AsyncClient, clock: SteppingClock, legacy: bool
) -> None:
    modelslab.script(
        "submit", Outcome.failed("Server overloaded, please retry", legacy_typo=legacy)
    )
    with pytest.raises(UpstreamError, match="Server overloaded"):
        await provider_for(modelslab, client, clock).submit(
            GenerationRequest(prompt="x", references=(reference(),))
        )
    assert modelslab.submits == 1


@pytest.mark.parametrize(
    ("outcome", "error"),
    [
        (Outcome.failed("Unable to fetch image from provided URL"), InvalidInput),
        (Outcome.failed("NSFW content detected in the input image"), Moderated),
        (Outcome.nsfw_flags(True), Moderated),
        (Outcome.http(401), AuthError),
        (Outcome.http(402, "Insufficient credits"), CreditsExhausted),
        (Outcome.http(500), UpstreamError),
        (Outcome.malformed(), UpstreamError),
    ],
)
async def test_errors_map_to_the_tree(
    modelslab: FakeProvider,
    client: httpx.AsyncClient,
    clock: SteppingClock,
    outcome: Outcome,
    error: type[ProviderError],
) -> None:
    modelslab.script("submit", outcome)
    with pytest.raises(error):
        await provider_for(modelslab, client, clock).submit(
            GenerationRequest(prompt="x", references=(reference(url="https://x.example/a.png"),))
        )
    assert modelslab.submits == 1


async def test_queue_limit_429_with_retry_after_in_body(
    modelslab: FakeProvider, client: httpx.AsyncClient, clock: SteppingClock
) -> None:
    modelslab.script(
        "submit", Outcome.rate_limited(40, where="body", message="Maximum 5 queued requests")
    )
    with pytest.raises(RateLimited) as caught:
        await provider_for(modelslab, client, clock).submit(
            GenerationRequest(prompt="x", references=(reference(url="https://x.example/a.png"),))
        )
    assert caught.value.retry_after == 40
    assert modelslab.submits == 1


async def test_polls_are_retried_on_5xx(
    modelslab: FakeProvider, client: httpx.AsyncClient, clock: SteppingClock
) -> None:
    modelslab.script("submit", Outcome.processing(polls=0))
    modelslab.script("poll", Outcome.http(502), Outcome.http(503))
    provider = provider_for(modelslab, client, clock)
    submitted = await provider.submit(GenerationRequest(prompt="x", references=(reference(),)))
    assert isinstance(submitted, Submitted)
    result = await clock.run(provider.poll(submitted.handle))
    assert isinstance(result, Finished)
    assert modelslab.polls == 3
    assert clock.sleeps == [2.0, 2.0]  # never below the minimum poll interval


async def test_failed_job_on_poll(
    modelslab: FakeProvider, client: httpx.AsyncClient, clock: SteppingClock
) -> None:
    modelslab.script(
        "submit", Outcome.processing(polls=1, then=Outcome.failed("Image generation failed"))
    )
    provider = provider_for(modelslab, client, clock)
    submitted = await provider.submit(GenerationRequest(prompt="x", references=(reference(),)))
    assert isinstance(submitted, Submitted)
    assert isinstance(await provider.poll(submitted.handle), Pending)
    with pytest.raises(UpstreamError, match="Image generation failed"):
        await provider.poll(submitted.handle)
