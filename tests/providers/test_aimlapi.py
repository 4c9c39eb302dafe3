"""AIML API against its fake: request mapping, both answer shapes, every error class."""

from __future__ import annotations

import base64

import httpx
import pytest

from bot.models import AspectRatio, OutputFormat
from bot.providers.base import Finished, GenerationRequest
from bot.providers.errors import (
    AuthError,
    BadAnswer,
    CreditsExhausted,
    InvalidInput,
    Moderated,
    ProviderError,
    ProviderTimeout,
    RateLimited,
    UpstreamError,
)
from tests.fakes import FakeProvider, Outcome
from tests.providers.conftest import STALL_POLICY, SteppingClock, provider_for, reference


def _edit(*refs: object, **options: object) -> GenerationRequest:
    return GenerationRequest(prompt="add a hat", references=refs or (reference(),), **options)  # type: ignore[arg-type]


async def _submit(
    fake: FakeProvider, client: httpx.AsyncClient, clock: SteppingClock, request: GenerationRequest
) -> Finished:
    result = await provider_for(fake, client, clock).submit(request)
    assert isinstance(result, Finished)
    return result


async def test_ratio_closest_to_first_reference_is_sent(
    aiml: FakeProvider, client: httpx.AsyncClient, clock: SteppingClock
) -> None:
    request = _edit(
        reference(1600, 900, url="https://cdn.discordapp.com/a.png"), reference(500, 500)
    )
    result = await _submit(aiml, client, clock, request)
    (body,) = aiml.bodies("submit")
    assert body["aspect_ratio"] == "16:9"
    assert body["model"] == "flux/kontext-max/image-to-image"
    assert body["image_url"][0] == "https://cdn.discordapp.com/a.png"
    assert body["image_url"][1].startswith("data:image/png;base64,")
    assert len(result.outputs) == 1 and result.outputs[0].url


async def test_one_reference_is_a_string_and_options_are_mapped(
    aiml: FakeProvider, client: httpx.AsyncClient, clock: SteppingClock
) -> None:
    request = _edit(
        reference(300, 400),
        aspect_ratio=AspectRatio.R21_9,
        seed=7,
        guidance=3.5,
        safety_tolerance=5,
        output_format=OutputFormat.JPEG,
        num_images=2,
    )
    result = await _submit(aiml, client, clock, request)
    (body,) = aiml.bodies("submit")
    assert isinstance(body["image_url"], str)
    assert body["aspect_ratio"] == "21:9"
    assert body["safety_tolerance"] == "5"
    assert (body["seed"], body["guidance_scale"], body["num_images"]) == (7, 3.5, 2)
    assert body["output_format"] == "jpeg"
    assert result.seed == 7 and len(result.outputs) == 2


async def test_text_to_image_uses_its_model_without_image_url(
    aiml: FakeProvider, client: httpx.AsyncClient, clock: SteppingClock
) -> None:
    await _submit(aiml, client, clock, GenerationRequest(prompt="a red fox"))
    (body,) = aiml.bodies("submit")
    assert body["model"] == "flux/kontext-max/text-to-image"
    assert "image_url" not in body
    assert body["aspect_ratio"] == "1:1"


async def test_data_shape_with_urls_and_credits(
    aiml: FakeProvider, client: httpx.AsyncClient, clock: SteppingClock
) -> None:
    aiml.script("submit", Outcome.success(shape="data", credits=21000))
    result = await _submit(aiml, client, clock, _edit())
    assert result.credits == 21000
    assert result.outputs[0].url is not None


async def test_data_shape_with_b64_json(
    aiml: FakeProvider, client: httpx.AsyncClient, clock: SteppingClock
) -> None:
    aiml.script("submit", Outcome.success(shape="data", b64=True))
    result = await _submit(aiml, client, clock, _edit())
    data = result.outputs[0].data
    assert data is not None and data.startswith(b"\x89PNG")
    assert result.outputs[0].url is None


async def test_all_outputs_flagged_is_moderated(
    aiml: FakeProvider, client: httpx.AsyncClient, clock: SteppingClock
) -> None:
    aiml.script("submit", Outcome.nsfw_flags(True, True))
    with pytest.raises(Moderated):
        await provider_for(aiml, client, clock).submit(_edit(num_images=2))


async def test_some_outputs_flagged_are_returned_with_flags(
    aiml: FakeProvider, client: httpx.AsyncClient, clock: SteppingClock
) -> None:
    aiml.script("submit", Outcome.nsfw_flags(False, True))
    result = await _submit(aiml, client, clock, _edit(num_images=2))
    assert [o.nsfw for o in result.outputs] == [False, True]


@pytest.mark.parametrize(
    ("outcome", "error", "words"),
    [
        (Outcome.http(401, "Invalid API key"), AuthError, "Check AIMLAPI_API_KEY"),
        (Outcome.http(403, "You've run out of credits"), CreditsExhausted, "out of credits"),
        (Outcome.http(402), CreditsExhausted, "out of credits"),
        (Outcome.http(400, "Body validation error!"), InvalidInput, "Body validation error!"),
        (Outcome.http(422, "prompt is too long"), InvalidInput, "prompt is too long"),
        (Outcome.http(500), UpstreamError, "HTTP 500"),
        (Outcome.http(502), UpstreamError, "HTTP 502"),
        (Outcome.http(503), UpstreamError, "HTTP 503"),
        (Outcome.http(504, "Generation timeout"), ProviderTimeout, "timed out"),
        (Outcome.malformed(), BadAnswer, "not valid JSON"),
        (Outcome.drop(), UpstreamError, "Could not reach AIML API"),
    ],
)
async def test_errors_map_to_the_tree_and_a_submit_is_never_repeated(
    aiml: FakeProvider,
    client: httpx.AsyncClient,
    clock: SteppingClock,
    outcome: Outcome,
    error: type[ProviderError],
    words: str,
) -> None:
    aiml.script("submit", outcome)
    with pytest.raises(error) as caught:
        await provider_for(aiml, client, clock).submit(_edit())
    assert type(caught.value) is error
    assert words in caught.value.user_message
    assert aiml.submits == 1
    assert clock.sleeps == []


@pytest.mark.parametrize("where", ["header", "body"])
async def test_rate_limited_carries_retry_after(
    aiml: FakeProvider, client: httpx.AsyncClient, clock: SteppingClock, where: str
) -> None:
    aiml.script("submit", Outcome.rate_limited(12, where=where))
    with pytest.raises(RateLimited) as caught:
        await provider_for(aiml, client, clock).submit(_edit())
    assert caught.value.retry_after == 12
    assert "Try again in 12 s" in caught.value.user_message
    assert aiml.submits == 1


async def test_read_timeout_after_sending_is_not_retried(
    aiml: FakeProvider, client: httpx.AsyncClient, clock: SteppingClock
) -> None:
    aiml.script("submit", Outcome.stall())
    with pytest.raises(ProviderTimeout, match="may still be running"):
        await provider_for(aiml, client, clock, policy=STALL_POLICY).submit(_edit())
    aiml.release()
    assert aiml.submits == 1


async def test_key_is_sent_as_bearer(
    aiml: FakeProvider, client: httpx.AsyncClient, clock: SteppingClock
) -> None:
    await _submit(aiml, client, clock, _edit())
    assert all(r.auth_ok for r in aiml.requests if r.endpoint == "submit")


async def test_wrong_key_is_an_auth_error(
    aiml: FakeProvider, client: httpx.AsyncClient, clock: SteppingClock
) -> None:
    provider = provider_for(aiml, client, clock, aimlapi_api_key="wrong-key")
    with pytest.raises(AuthError):
        await provider.submit(_edit())


async def test_b64_garbage_is_upstream_error(
    aiml: FakeProvider, client: httpx.AsyncClient, clock: SteppingClock
) -> None:
    provider = provider_for(aiml, client, clock)
    parse = provider.parse  # type: ignore[attr-defined]
    with pytest.raises(UpstreamError):
        parse({"data": [{"b64_json": "***not base64***"}]})
    good = base64.b64encode(b"abc").decode()
    assert parse({"data": [{"b64_json": good}]}).outputs[0].data == b"abc"
