"""generate(): submit, poll with backoff to a deadline, download at once, check the bytes."""

from __future__ import annotations

import httpx
import pytest

from bot.errors import KontextError
from bot.generate import GeneratedImage, generate, poll_delay
from bot.media import MediaFetcher
from bot.providers.base import Finished, GenerationRequest, Pending, Submitted
from bot.providers.errors import Moderated, ProviderTimeout, UpstreamError
from tests.fakes import FakeProvider, Outcome, settings_for
from tests.providers.conftest import SteppingClock, provider_for, reference


def test_poll_delay_starts_at_the_minimum_and_grows_to_the_cap() -> None:
    assert [poll_delay(n, 2.0) for n in range(7)] == [2.0, 3.0, 4.5, 6.75, 10.0, 10.0, 10.0]
    assert poll_delay(0, 1.0) == 1.0
    assert poll_delay(5, 12.0) == 12.0  # a minimum above the cap wins


async def _generate(
    fake: FakeProvider,
    client: httpx.AsyncClient,
    clock: SteppingClock,
    request: GenerationRequest,
    **options: object,
) -> list[GeneratedImage]:
    provider = provider_for(fake, client, clock)
    fetcher = MediaFetcher.from_settings(
        client, settings_for(fake), provider.capabilities.result_hosts
    )
    return await clock.run(
        generate(provider, request, fetcher=fetcher, clock=clock, **options)  # type: ignore[arg-type]
    )


async def test_real_images_follow_the_first_reference(
    any_fake: FakeProvider, client: httpx.AsyncClient, clock: SteppingClock
) -> None:
    request = GenerationRequest(prompt="add a hat", references=(reference(1600, 900),))
    (image,) = await _generate(any_fake, client, clock, request)
    assert image.format == "png" and image.data.startswith(b"\x89PNG")
    assert (image.width, image.height) == (1024, 576)
    assert not image.nsfw


async def test_progress_is_reported_and_polls_back_off(
    wavespeed: FakeProvider, client: httpx.AsyncClient, clock: SteppingClock
) -> None:
    wavespeed.script("submit", Outcome.processing(polls=2))
    seen: list[object] = []
    request = GenerationRequest(prompt="x", references=(reference(),))
    await _generate(wavespeed, client, clock, request, on_progress=seen.append)
    assert [type(s) for s in seen] == [Submitted, Pending, Pending, Finished]
    assert clock.sleeps[:3] == [2.0, 3.0, 4.5]


async def test_overall_deadline_is_a_timeout(
    wavespeed: FakeProvider, client: httpx.AsyncClient, clock: SteppingClock
) -> None:
    wavespeed.script("submit", Outcome.processing(polls=10_000))
    started = clock.monotonic()
    request = GenerationRequest(prompt="x", references=(reference(),))
    with pytest.raises(ProviderTimeout, match="WaveSpeed did not finish within 60 s"):
        await _generate(wavespeed, client, clock, request, deadline_seconds=60)
    assert clock.monotonic() - started == pytest.approx(60)
    assert wavespeed.submits == 1 and 5 <= wavespeed.polls <= 12


async def test_every_output_is_downloaded(
    modelslab: FakeProvider, client: httpx.AsyncClient, clock: SteppingClock
) -> None:
    modelslab.script("submit", Outcome.processing(polls=1))
    request = GenerationRequest(prompt="x", references=(reference(),), num_images=3)
    images = await _generate(modelslab, client, clock, request)
    assert len(images) == 3 and modelslab.count("cdn") == 3
    assert len({i.data for i in images}) == 3


async def test_b64_results_need_no_download(
    aiml: FakeProvider, client: httpx.AsyncClient, clock: SteppingClock
) -> None:
    aiml.script("submit", Outcome.success(shape="data", b64=True))
    (image,) = await _generate(aiml, client, clock, GenerationRequest(prompt="a fox"))
    assert (image.width, image.height) == (1024, 1024) and aiml.count("cdn") == 0


async def test_partly_flagged_results_keep_their_flags(
    aiml: FakeProvider, client: httpx.AsyncClient, clock: SteppingClock
) -> None:
    aiml.script("submit", Outcome.nsfw_flags(True, False))
    request = GenerationRequest(prompt="x", references=(reference(),), num_images=2)
    images = await _generate(aiml, client, clock, request)
    assert [i.nsfw for i in images] == [True, False]


async def test_all_flagged_is_moderated_and_nothing_is_downloaded(
    aiml: FakeProvider, client: httpx.AsyncClient, clock: SteppingClock
) -> None:
    aiml.script("submit", Outcome.nsfw_flags(True))
    with pytest.raises(Moderated):
        await _generate(aiml, client, clock, GenerationRequest(prompt="x"))
    assert aiml.count("cdn") == 0


async def test_a_result_that_is_not_an_image_is_refused(
    aiml: FakeProvider, client: httpx.AsyncClient, clock: SteppingClock
) -> None:
    aiml.script("cdn", Outcome.not_image())
    with pytest.raises(UpstreamError, match="not a usable image"):
        await _generate(aiml, client, clock, GenerationRequest(prompt="x"))


async def test_a_missing_result_is_a_download_failure(
    aiml: FakeProvider, client: httpx.AsyncClient, clock: SteppingClock
) -> None:
    aiml.script("cdn", Outcome.http(404))
    with pytest.raises(KontextError) as caught:
        await _generate(aiml, client, clock, GenerationRequest(prompt="x"))
    assert caught.value.code == "download_failed"
