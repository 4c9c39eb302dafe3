"""Black Forest Labs against its fake: fields, polling exactly ``polling_url``, every status."""

from __future__ import annotations

import base64

import httpx
import pytest

from bot.media import DownloadFailed, MediaFetcher
from bot.models import AspectRatio, OutputFormat
from bot.providers.base import Finished, GenerationRequest, Pending, Submitted
from bot.providers.bfl import BFL_DOMAINS, BflProvider
from bot.providers.common import url_on
from bot.providers.errors import (
    AuthError,
    CreditsExhausted,
    Moderated,
    ProviderError,
    RateLimited,
    UpstreamError,
)
from tests.fakes import BflFake, FakeProvider, Outcome, settings_for
from tests.providers.conftest import SteppingClock, provider_for, reference


async def test_edit_body_and_model_path(
    bfl: FakeProvider, client: httpx.AsyncClient, clock: SteppingClock
) -> None:
    provider = provider_for(bfl, client, clock)
    refs = (reference(1600, 900), reference(url="https://cdn.discordapp.com/a.png"))
    request = GenerationRequest(
        prompt="the hat from image 2",
        references=refs,
        safety_tolerance=5,
        seed=42,
        output_format=OutputFormat.JPEG,
    )
    assert isinstance(await provider.submit(request), Submitted)
    (submit,) = [r for r in bfl.requests if r.endpoint == "submit"]
    assert submit.path == "/v1/flux-kontext-max"
    body = submit.body
    assert base64.b64decode(body["input_image"]) == refs[0].data  # bare base64, no data: prefix
    assert body["input_image_2"] == "https://cdn.discordapp.com/a.png"
    assert body["aspect_ratio"] == "16:9" and body["output_format"] == "jpeg"
    assert body["safety_tolerance"] == 2  # at most 2 with an image
    assert body["seed"] == 42


async def test_pro_model_and_text_to_image(
    bfl: FakeProvider, client: httpx.AsyncClient, clock: SteppingClock
) -> None:
    provider = provider_for(bfl, client, clock, bfl_model="pro")
    assert provider.capabilities.default_concurrency == 24
    await provider.submit(GenerationRequest(prompt="a fox", safety_tolerance=5))
    (submit,) = [r for r in bfl.requests if r.endpoint == "submit"]
    assert submit.path == "/v1/flux-kontext-pro"
    assert "input_image" not in submit.body
    assert submit.body["safety_tolerance"] == 5 and submit.body["aspect_ratio"] == "1:1"


async def test_polls_exactly_the_polling_url_until_ready(
    bfl: FakeProvider, client: httpx.AsyncClient, clock: SteppingClock
) -> None:
    assert isinstance(bfl, BflFake)
    bfl.script("submit", Outcome.processing(polls=2))
    provider = provider_for(bfl, client, clock)
    submitted = await provider.submit(GenerationRequest(prompt="x", references=(reference(),)))
    assert isinstance(submitted, Submitted)
    assert submitted.handle.startswith(f"{bfl.poll_base}/v1/get_result?id=")
    first = await provider.poll(submitted.handle)
    assert isinstance(first, Pending) and first.status == "Pending" and first.progress == 0.5
    await provider.poll(submitted.handle)
    done = await provider.poll(submitted.handle)
    assert isinstance(done, Finished) and done.seed == 42
    assert done.outputs[0].url and "/cdn/" in done.outputs[0].url
    assert all(r.at is not None for r in bfl.requests)
    assert bfl.polls == 3  # the fake records a violation for any poll on the submit port


def test_the_key_goes_only_to_bfl_hosts() -> None:
    base = "https://api.bfl.ai"
    assert url_on("https://api.eu2.bfl.ai/v1/get_result?id=1", base, BFL_DOMAINS)
    assert url_on("https://api.us1.bfl.ai/v1/get_result?id=1", base, BFL_DOMAINS)
    assert not url_on("https://bfl.ai.example.com/v1/get_result", base, BFL_DOMAINS)
    assert not url_on("http://api.eu.bfl.ai/v1/get_result", base, BFL_DOMAINS)
    assert not url_on("https://evil.example/v1/get_result", base, BFL_DOMAINS)


async def test_a_foreign_polling_url_is_refused_without_a_request(
    bfl: FakeProvider, client: httpx.AsyncClient, clock: SteppingClock
) -> None:
    provider = provider_for(bfl, client, clock)
    with pytest.raises(UpstreamError) as caught:
        await provider.poll("https://evil.example/v1/get_result?id=1")
    assert caught.value.detail == "the polling URL is not on a Black Forest Labs host"
    assert bfl.requests == []


@pytest.mark.parametrize(
    ("status", "error", "words"),
    [
        ("Request Moderated", Moderated, "safety filter"),
        ("Content Moderated", Moderated, "safety filter"),
        ("Error", ProviderError, "status 'Error'"),
        ("Failed", ProviderError, "status 'Failed'"),
    ],
)
async def test_terminal_statuses(
    bfl: FakeProvider,
    client: httpx.AsyncClient,
    clock: SteppingClock,
    status: str,
    error: type[ProviderError],
    words: str,
) -> None:
    bfl.script("submit", Outcome.processing(polls=1, then=Outcome.failed(status)))
    provider = provider_for(bfl, client, clock)
    submitted = await provider.submit(GenerationRequest(prompt="x", references=(reference(),)))
    assert isinstance(submitted, Submitted)
    assert isinstance(await provider.poll(submitted.handle), Pending)
    with pytest.raises(error, match=words) as caught:
        await provider.poll(submitted.handle)
    assert not caught.value.retryable
    if error is Moderated:
        assert caught.value.detail == "Derivative Works Filter"


async def test_task_not_found_ends_the_job(
    bfl: FakeProvider, client: httpx.AsyncClient, clock: SteppingClock
) -> None:
    assert isinstance(bfl, BflFake)
    provider = provider_for(bfl, client, clock)
    with pytest.raises(ProviderError, match="Task not found") as caught:
        await provider.poll(f"{bfl.poll_base}/v1/get_result?id=unknown")
    assert type(caught.value) is ProviderError and not caught.value.retryable


async def test_a_bare_id_is_polled_on_the_base_url(
    bfl: FakeProvider, client: httpx.AsyncClient, clock: SteppingClock
) -> None:
    provider = provider_for(bfl, client, clock)
    with pytest.raises(ProviderError, match="Task not found"):
        await provider.poll("abc")
    assert bfl.violations == [
        "GET /v1/get_result: polled the submit host instead of the polling_url it was given"
    ]
    bfl.violations.clear()


async def test_seventh_active_max_task_is_rate_limited_and_not_retried(
    bfl: FakeProvider, client: httpx.AsyncClient, clock: SteppingClock
) -> None:
    provider = provider_for(bfl, client, clock)
    request = GenerationRequest(prompt="x", references=(reference(),))
    for _ in range(6):
        assert isinstance(await provider.submit(request), Submitted)
    with pytest.raises(RateLimited):
        await provider.submit(request)
    assert bfl.submits == 7


@pytest.mark.parametrize(
    ("outcome", "error"),
    [
        (Outcome.http(402, "Payment Required"), CreditsExhausted),
        (Outcome.http(401, "Not authenticated"), AuthError),
        (Outcome.http(422, "Input should be less than or equal to 6"), ProviderError),
        (Outcome.http(503), UpstreamError),
    ],
)
async def test_submit_errors(
    bfl: FakeProvider,
    client: httpx.AsyncClient,
    clock: SteppingClock,
    outcome: Outcome,
    error: type[ProviderError],
) -> None:
    bfl.script("submit", outcome)
    with pytest.raises(error):
        await provider_for(bfl, client, clock).submit(GenerationRequest(prompt="x"))
    assert bfl.submits == 1


async def test_wrong_key_is_an_auth_error(
    bfl: FakeProvider, client: httpx.AsyncClient, clock: SteppingClock
) -> None:
    provider = provider_for(bfl, client, clock, bfl_api_key="nope")
    with pytest.raises(AuthError, match="BFL_API_KEY"):
        await provider.submit(GenerationRequest(prompt="x"))


async def test_the_sample_expires_after_ten_minutes(
    bfl: FakeProvider, client: httpx.AsyncClient, clock: SteppingClock
) -> None:
    bfl.script("submit", Outcome.processing(polls=0))
    provider = provider_for(bfl, client, clock)
    submitted = await provider.submit(GenerationRequest(prompt="x"))
    assert isinstance(submitted, Submitted)
    done = await provider.poll(submitted.handle)
    assert isinstance(done, Finished) and done.outputs[0].url
    fetcher = MediaFetcher.from_settings(client, settings_for(bfl), ())
    assert await fetcher.fetch(done.outputs[0].url)  # at once: fine
    clock.advance(600)
    with pytest.raises(DownloadFailed) as caught:
        await fetcher.fetch(done.outputs[0].url)
    assert caught.value.status == 403


async def test_credits_prove_the_key(
    bfl: FakeProvider, client: httpx.AsyncClient, clock: SteppingClock
) -> None:
    provider = provider_for(bfl, client, clock)
    assert isinstance(provider, BflProvider)
    assert await provider.key_status() == "1234 credits ($12.34)"
    with pytest.raises(AuthError):
        await provider_for(bfl, client, clock, bfl_api_key="nope").key_status()  # type: ignore[attr-defined]


async def test_no_cancel_and_ratio_is_always_sent(
    bfl: FakeProvider, client: httpx.AsyncClient, clock: SteppingClock
) -> None:
    provider = provider_for(bfl, client, clock)
    assert await provider.cancel("anything") is False
    request = GenerationRequest(
        prompt="x", references=(reference(90, 160),), aspect_ratio=AspectRatio.R21_9
    )
    await provider.submit(request)
    assert bfl.bodies("submit")[0]["aspect_ratio"] == "21:9"
