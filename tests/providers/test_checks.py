"""Refusals before any network call: capability checks, missing keys, the registry."""

from __future__ import annotations

import httpx
import pytest

from bot.config import Settings
from bot.models import AspectRatio
from bot.providers import CAPABILITIES, PROVIDERS, build_provider
from bot.providers.base import GenerationRequest, Provider
from bot.providers.errors import AuthError, UnsupportedRequest
from tests.fakes import FakeProvider
from tests.providers.conftest import SteppingClock, provider_for, reference


def test_registry_is_explicit_and_matches_capabilities() -> None:
    assert (
        set(PROVIDERS)
        == set(CAPABILITIES)
        == {
            "aimlapi",
            "modelslab",
            "wavespeed",
            "bfl",
            "fal",
            "replicate",
        }
    )
    for name, caps in CAPABILITIES.items():
        assert caps.name == name


async def test_build_provider_unknown_name(settings: Settings, clock: SteppingClock) -> None:
    async with httpx.AsyncClient() as client:
        with pytest.raises(UnsupportedRequest, match="Unknown provider 'nope'; choose one of"):
            build_provider("nope", settings, client, clock)


async def _refused(
    fake: FakeProvider, provider: Provider, request: GenerationRequest
) -> UnsupportedRequest:
    with pytest.raises(UnsupportedRequest) as caught:
        await provider.submit(request)
    assert fake.requests == [], "a refused request must not reach the provider"
    return caught.value


async def test_three_references_to_modelslab_name_the_alternatives(
    modelslab: FakeProvider, client: httpx.AsyncClient, clock: SteppingClock
) -> None:
    provider = provider_for(modelslab, client, clock)
    request = GenerationRequest(prompt="merge", references=(reference(),) * 3)
    error = await _refused(modelslab, provider, request)
    assert str(error) == (
        "ModelsLab takes at most 2 reference images; you gave 3. "
        "AIML API (up to 4), WaveSpeed (up to 4), Black Forest Labs (up to 4) and "
        "fal.ai (up to 4) can take 3."
    )
    assert error.alternatives == ("aimlapi", "wavespeed", "bfl", "fal")


@pytest.mark.parametrize("name", ["modelslab", "wavespeed"])
async def test_text_to_image_refused_where_there_is_no_model(
    name: str,
    modelslab: FakeProvider,
    wavespeed: FakeProvider,
    client: httpx.AsyncClient,
    clock: SteppingClock,
) -> None:
    fake = modelslab if name == "modelslab" else wavespeed
    provider = provider_for(fake, client, clock)
    error = await _refused(fake, provider, GenerationRequest(prompt="a cat"))
    assert str(error) == (
        f"{CAPABILITIES[name].label} has no text-to-image model; "
        "use AIML API, Black Forest Labs, fal.ai and Replicate."
    )
    assert error.alternatives == ("aimlapi", "bfl", "fal", "replicate")


async def test_several_images_refused_on_wavespeed(
    wavespeed: FakeProvider, client: httpx.AsyncClient, clock: SteppingClock
) -> None:
    provider = provider_for(wavespeed, client, clock)
    request = GenerationRequest(prompt="x", references=(reference(),), num_images=3)
    error = await _refused(wavespeed, provider, request)
    assert "WaveSpeed makes one image per request; you asked for 3." in str(error)
    assert "AIML API (up to 4), ModelsLab (up to 4) and fal.ai (up to 4) can make 3." in str(error)


async def test_guidance_outside_the_provider_range(
    wavespeed: FakeProvider, client: httpx.AsyncClient, clock: SteppingClock
) -> None:
    provider = provider_for(wavespeed, client, clock)
    request = GenerationRequest(prompt="x", references=(reference(),), guidance=15)
    error = await _refused(wavespeed, provider, request)
    assert str(error) == (
        "WaveSpeed takes guidance from 1 to 10; you gave 15. "
        "AIML API, ModelsLab and fal.ai can take it."
    )
    assert error.alternatives == ("aimlapi", "modelslab", "fal")


async def test_missing_key_refused_before_any_request(
    any_fake: FakeProvider, client: httpx.AsyncClient, clock: SteppingClock
) -> None:
    key_setting = f"{any_fake.name}_api_key"
    provider = provider_for(any_fake, client, clock, **{key_setting: None})
    request = GenerationRequest(prompt="x", references=(reference(),))
    with pytest.raises(AuthError) as caught:
        await provider.submit(request)
    assert any_fake.requests == []
    env = any_fake.key_env or f"{any_fake.name.upper()}_API_KEY"
    assert str(caught.value).startswith(f"{env} is not set, so {CAPABILITIES[any_fake.name].label}")


def test_every_ratio_is_accepted_by_every_provider() -> None:
    for caps in CAPABILITIES.values():
        assert caps.aspect_ratios == frozenset(AspectRatio)


async def test_wavespeed_seed_range(
    wavespeed: FakeProvider, client: httpx.AsyncClient, clock: SteppingClock
) -> None:
    provider = provider_for(wavespeed, client, clock)
    request = GenerationRequest(prompt="x", references=(reference(),), seed=10**10)
    error = await _refused(wavespeed, provider, request)
    assert str(error) == "WaveSpeed takes seeds from 1 to 9999999999; you gave 10000000000."


async def test_seed_beyond_what_json_carries_exactly_is_refused(
    any_fake: FakeProvider, client: httpx.AsyncClient, clock: SteppingClock
) -> None:
    """A provider that documents no ceiling gets seeds up to 2**53 - 1, the largest integer
    every JSON parser reads exactly; one more would reach it rounded (another seed)."""
    provider = provider_for(any_fake, client, clock)
    caps = CAPABILITIES[any_fake.name]
    request = GenerationRequest(prompt="x", references=(reference(),), seed=2**64)
    error = await _refused(any_fake, provider, request)
    assert str(error) == f"{caps.label} takes seeds from 1 to {caps.max_seed}; you gave {2**64}."
    assert caps.max_seed <= 2**53 - 1
