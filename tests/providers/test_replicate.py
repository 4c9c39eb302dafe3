"""Replicate against its fake: Prefer: wait, polling urls.get, statuses, errors, files, cancel."""

from __future__ import annotations

import io
import os

import httpx
import pytest
from PIL import Image

from bot.media import DownloadFailed, MediaFetcher
from bot.models import OutputFormat
from bot.providers.base import Finished, GenerationRequest, Pending, ReferenceImage, Submitted
from bot.providers.errors import (
    AuthError,
    CreditsExhausted,
    InvalidInput,
    Moderated,
    ProviderError,
    RateLimited,
    UnsupportedRequest,
)
from tests.fakes import FakeProvider, Outcome, ReplicateFake, settings_for
from tests.providers.conftest import SteppingClock, provider_for, reference

MODEL_PATH = "/v1/models/black-forest-labs/flux-kontext-max/predictions"


async def test_a_quick_prediction_answers_in_the_post(
    replicate: FakeProvider, client: httpx.AsyncClient, clock: SteppingClock
) -> None:
    assert isinstance(replicate, ReplicateFake)
    replicate.script("submit", Outcome.success())
    provider = provider_for(replicate, client, clock)
    request = GenerationRequest(
        prompt="90s cartoon",
        references=(reference(1600, 900),),
        safety_tolerance=6,
        output_format=OutputFormat.JPEG,
    )
    result = await provider.submit(request)
    assert isinstance(result, Finished) and result.handle
    assert result.outputs[0].url and result.outputs[0].url.endswith(".jpg")
    (submit,) = [r for r in replicate.requests if r.endpoint == "submit"]
    assert submit.path == MODEL_PATH
    inputs = submit.body["input"]
    assert inputs["input_image"].startswith("data:image/png;base64,")
    assert inputs["aspect_ratio"] == "match_input_image"
    assert inputs["output_format"] == "jpg" and inputs["safety_tolerance"] == 2
    assert replicate.waits == ["wait=10"]


async def test_a_slow_prediction_is_polled_at_urls_get(
    replicate: FakeProvider, client: httpx.AsyncClient, clock: SteppingClock
) -> None:
    assert isinstance(replicate, ReplicateFake)
    replicate.output_list = True  # other FLUX models answer a list: accepted too
    replicate.script("submit", Outcome.processing(polls=1))
    provider = provider_for(replicate, client, clock)
    submitted = await provider.submit(GenerationRequest(prompt="a fox", safety_tolerance=5))
    assert isinstance(submitted, Submitted)
    assert submitted.handle.startswith(f"{replicate.base_url}/v1/predictions/")
    assert replicate.bodies("submit")[0]["input"]["safety_tolerance"] == 5  # no image: up to 6
    assert isinstance(await provider.poll(submitted.handle), Pending)
    done = await provider.poll(submitted.handle)
    assert isinstance(done, Finished) and done.handle == submitted.handle


@pytest.mark.parametrize(
    ("then", "error", "words"),
    [
        (
            Outcome.failed(
                "The input or output was flagged as sensitive. Please try again with "
                "different inputs. (E005)"
            ),
            Moderated,
            "safety filter",
        ),
        (Outcome.failed("Prediction interrupted; please retry (code: PA)"), ProviderError, "PA"),
    ],
)
async def test_failed_predictions(
    replicate: FakeProvider,
    client: httpx.AsyncClient,
    clock: SteppingClock,
    then: Outcome,
    error: type[ProviderError],
    words: str,
) -> None:
    replicate.script("submit", Outcome.processing(polls=1, then=then))
    provider = provider_for(replicate, client, clock)
    submitted = await provider.submit(GenerationRequest(prompt="x"))
    assert isinstance(submitted, Submitted)
    await provider.poll(submitted.handle)
    with pytest.raises(error, match=words) as caught:
        await provider.poll(submitted.handle)
    assert not caught.value.retryable


async def test_cancel_then_poll_is_canceled(
    replicate: FakeProvider, client: httpx.AsyncClient, clock: SteppingClock
) -> None:
    replicate.script("submit", Outcome.processing(polls=5))
    provider = provider_for(replicate, client, clock)
    submitted = await provider.submit(GenerationRequest(prompt="x"))
    assert isinstance(submitted, Submitted)
    assert await provider.cancel(submitted.handle) is True
    with pytest.raises(ProviderError, match="cancelled at Replicate"):
        await provider.poll(submitted.handle)


@pytest.mark.parametrize(
    ("outcome", "error", "words"),
    [
        (Outcome.http(402), CreditsExhausted, "out of credits"),
        (Outcome.http(401, "Unauthenticated"), AuthError, "REPLICATE_API_TOKEN"),
        (Outcome.http(422, "output_format must be one of"), InvalidInput, "output_format"),
    ],
)
async def test_submit_errors(
    replicate: FakeProvider,
    client: httpx.AsyncClient,
    clock: SteppingClock,
    outcome: Outcome,
    error: type[ProviderError],
    words: str,
) -> None:
    replicate.script("submit", outcome)
    with pytest.raises(error, match=words):
        await provider_for(replicate, client, clock).submit(GenerationRequest(prompt="x"))
    assert replicate.submits == 1


async def test_throttling_names_its_wait_only_in_words(
    replicate: FakeProvider, client: httpx.AsyncClient, clock: SteppingClock
) -> None:
    replicate.script("submit", Outcome.rate_limited(30, where="text"))
    with pytest.raises(RateLimited) as caught:
        await provider_for(replicate, client, clock).submit(GenerationRequest(prompt="x"))
    assert caught.value.retry_after == 30 and replicate.submits == 1


async def test_two_references_only_on_pro_through_the_multi_image_app(
    replicate: FakeProvider, client: httpx.AsyncClient, clock: SteppingClock
) -> None:
    refs = (reference(), reference(url="https://cdn.discordapp.com/b.png"))
    with pytest.raises(UnsupportedRequest) as caught:
        await provider_for(replicate, client, clock).submit(
            GenerationRequest(prompt="x", references=refs)
        )
    assert str(caught.value).startswith("Replicate takes at most 1 reference images; you gave 2.")
    assert "Black Forest Labs (up to 4)" in str(caught.value)
    assert replicate.requests == []
    pro = provider_for(replicate, client, clock, replicate_model="pro")
    await pro.submit(GenerationRequest(prompt="x", references=refs, safety_tolerance=5))
    (submit,) = [r for r in replicate.requests if r.endpoint == "submit"]
    assert submit.path == "/v1/predictions"
    assert submit.body["version"].startswith("6d14f9b3")
    assert submit.body["input"]["input_image_2"] == "https://cdn.discordapp.com/b.png"
    assert submit.body["input"]["safety_tolerance"] == 2


async def test_dev_has_guidance_and_no_text_to_image(
    replicate: FakeProvider, client: httpx.AsyncClient, clock: SteppingClock
) -> None:
    dev = provider_for(replicate, client, clock, replicate_model="dev")
    with pytest.raises(UnsupportedRequest, match="no text-to-image"):
        await dev.submit(GenerationRequest(prompt="a fox"))
    await dev.submit(
        GenerationRequest(prompt="x", references=(reference(),), guidance=3, safety_tolerance=4)
    )
    (submit,) = [r for r in replicate.requests if r.endpoint == "submit"]
    assert submit.path == "/v1/models/black-forest-labs/flux-kontext-dev/predictions"
    inputs = submit.body["input"]
    assert inputs["guidance"] == 3 and inputs["disable_safety_checker"] is False
    assert "safety_tolerance" not in inputs


def _noise(side: int) -> ReferenceImage:
    out = io.BytesIO()
    Image.frombytes("RGB", (side, side), os.urandom(side * side * 3)).save(out, format="PNG")
    return ReferenceImage(data=out.getvalue(), mime="image/png", width=side, height=side)


async def test_large_local_bytes_are_uploaded_first(
    replicate: FakeProvider, client: httpx.AsyncClient, clock: SteppingClock
) -> None:
    big = _noise(400)
    assert len(big.data) > 256 * 1024
    await provider_for(replicate, client, clock).submit(
        GenerationRequest(prompt="x", references=(big,))
    )
    assert replicate.count("upload") == 1
    url = replicate.bodies("submit")[0]["input"]["input_image"]
    assert url.startswith(f"{replicate.base_url}/cdn/upload-")


async def test_outputs_are_deleted_after_an_hour(
    replicate: FakeProvider, client: httpx.AsyncClient, clock: SteppingClock
) -> None:
    replicate.script("submit", Outcome.success())
    result = await provider_for(replicate, client, clock).submit(GenerationRequest(prompt="x"))
    assert isinstance(result, Finished) and result.outputs[0].url
    fetcher = MediaFetcher.from_settings(client, settings_for(replicate), ())
    assert await fetcher.fetch(result.outputs[0].url)
    clock.advance(3600)
    with pytest.raises(DownloadFailed) as caught:
        await fetcher.fetch(result.outputs[0].url)
    assert caught.value.status == 404


async def test_account_proves_the_token(
    replicate: FakeProvider, client: httpx.AsyncClient, clock: SteppingClock
) -> None:
    provider = provider_for(replicate, client, clock)
    assert await provider.key_status() == "account kontext-tests"  # type: ignore[attr-defined]


async def test_an_unknown_status_ends_the_job(
    replicate: FakeProvider, client: httpx.AsyncClient, clock: SteppingClock
) -> None:
    replicate.script("submit", Outcome.processing(polls=3))
    replicate.script("poll", Outcome.failed("aborted"))
    provider = provider_for(replicate, client, clock)
    submitted = await provider.submit(GenerationRequest(prompt="x"))
    assert isinstance(submitted, Submitted)
    with pytest.raises(ProviderError, match="status 'aborted'") as caught:
        await provider.poll(submitted.handle)
    assert not caught.value.retryable
