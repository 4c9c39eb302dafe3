"""The fakes themselves: they must catch what the real providers would refuse."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from bot.media import MediaFetcher
from bot.providers import CAPABILITIES
from tests.fakes import (
    AimlApiFake,
    BflFake,
    FalFake,
    ModelsLabFake,
    ReplicateFake,
    WaveSpeedFake,
    require_docs,
)
from tests.fakes.schemas import wavespeed_schemas


async def test_aiml_fake_refuses_an_off_schema_body(docs: Path) -> None:
    async with AimlApiFake(docs=docs) as fake, httpx.AsyncClient() as client:
        body = {
            "model": "flux/kontext-max/image-to-image",
            "prompt": "x",
            "image_url": "not a uri",
            "safety_tolerance": 2,
        }
        answer = await client.post(
            f"{fake.base_url}/v1/images/generations",
            json=body,
            headers={"Authorization": f"Bearer {fake.api_key}"},
        )
    assert answer.status_code == 400 and answer.json()["message"] == "Body validation error!"
    assert any("safety_tolerance" in v for v in fake.violations)
    assert any("image_url" in v for v in fake.violations)
    with pytest.raises(AssertionError, match="broke the provider's schema"):
        fake.assert_clean()


async def test_aiml_fake_defaults_to_16_9_like_the_real_api(docs: Path) -> None:
    async with AimlApiFake(docs=docs) as fake, httpx.AsyncClient() as client:
        answer = await client.post(
            f"{fake.base_url}/v1/images/generations",
            json={"model": "flux/kontext-max/text-to-image", "prompt": "x"},
            headers={"Authorization": f"Bearer {fake.api_key}"},
        )
        image = answer.json()["images"][0]
    assert (image["width"], image["height"]) == (1024, 576)
    fake.assert_clean()


async def test_modelslab_fake_answers_errors_inside_200(docs: Path) -> None:
    async with ModelsLabFake(docs=docs) as fake, httpx.AsyncClient() as client:
        body = {
            "key": fake.api_key,
            "model_id": "flux-kontext-dev",
            "prompt": "x",
            "init_image": "https://x.example/a.png",
            "width": 2048,
            "enhance_prompt": None,
        }
        answer = await client.post(f"{fake.base_url}/api/v6/images/img2img", json=body)
    assert answer.status_code == 200 and answer.json()["status"] == "error"
    assert fake.violations == [
        "POST /api/v6/images/img2img: width: 2048 is greater than the maximum of 1024"
    ]


async def test_wavespeed_fake_checks_the_table_and_multi(docs: Path) -> None:
    single = wavespeed_schemas(docs)["single"].schema
    assert single["properties"]["seed"] == {"type": "integer", "minimum": -1, "maximum": 9999999999}
    assert single["required"] == ["prompt", "image"]
    async with WaveSpeedFake(docs=docs) as fake, httpx.AsyncClient() as client:
        auth = {"Authorization": f"Bearer {fake.api_key}"}
        base = f"{fake.base_url}/api/v3/wavespeed-ai/flux-kontext-max"
        too_many = {"prompt": "x", "images": ["https://x.example/a.png"] * 6, "aspect_ratio": "1:1"}
        first = await client.post(f"{base}/multi", json=too_many, headers=auth)
        second = await client.post(
            base,
            json={"prompt": "x", "image": "https://x.example/a.png", "guidance_scale": 50},
            headers=auth,
        )
        wrong_key = await client.post(base, json={"prompt": "x", "image": "https://x/a"})
    assert first.status_code == second.status_code == 400
    assert wrong_key.status_code == 401
    assert len(fake.violations) == 2


def test_missing_docs_skip_or_fail_in_ci(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("KONTEXT_PROVIDER_DOCS", str(tmp_path / "nowhere"))
    monkeypatch.delenv("KONTEXT_REQUIRE_PROVIDER_DOCS", raising=False)
    with pytest.raises(pytest.skip.Exception, match="KONTEXT_PROVIDER_DOCS"):
        require_docs()
    monkeypatch.setenv("KONTEXT_REQUIRE_PROVIDER_DOCS", "1")
    with pytest.raises(pytest.fail.Exception, match="provider docs not found"):
        require_docs()


async def test_bfl_fake_checks_the_notes_table(docs: Path) -> None:
    async with BflFake(docs=docs) as fake, httpx.AsyncClient() as client:
        key = {"x-key": fake.api_key}
        url = f"{fake.base_url}/v1/flux-kontext-max"
        too_lenient = await client.post(
            url, json={"prompt": "x", "safety_tolerance": 7}, headers=key
        )
        unknown = await client.post(url, json={"prompt": "x", "steps": 30}, headers=key)
        edit_tolerance = await client.post(
            url, json={"prompt": "x", "input_image": "aGk=", "safety_tolerance": 4}, headers=key
        )
        no_key = await client.post(url, json={"prompt": "x"})
    assert too_lenient.status_code == unknown.status_code == edit_tolerance.status_code == 422
    assert too_lenient.json()["detail"][0]["loc"] == ["body", "safety_tolerance"]
    assert no_key.status_code == 401
    assert len(fake.violations) == 3


async def test_fal_fake_wants_a_string_tolerance_and_known_endpoints(docs: Path) -> None:
    async with FalFake(docs=docs) as fake, httpx.AsyncClient() as client:
        key = {"Authorization": f"Key {fake.api_key}"}
        body = {"prompt": "x", "image_url": "https://x.example/a.png", "safety_tolerance": 2}
        no_key = await client.post(f"{fake.base_url}/fal-ai/flux-pro/kontext", json=body)
        integer = await client.post(
            f"{fake.base_url}/fal-ai/flux-pro/kontext", json=body, headers=key
        )
        wrong = await client.post(f"{fake.base_url}/fal-ai/flux-pro/other", json={}, headers=key)
    assert integer.status_code == 422 and wrong.status_code == 404 and no_key.status_code == 401
    assert any("safety_tolerance" in v for v in fake.violations)
    assert any("not a Kontext endpoint" in v for v in fake.violations)


async def test_replicate_fake_refuses_jpeg_and_unknown_fields(docs: Path) -> None:
    async with ReplicateFake(docs=docs) as fake, httpx.AsyncClient() as client:
        auth = {"Authorization": f"Bearer {fake.api_key}"}
        url = f"{fake.base_url}/v1/models/black-forest-labs/flux-kontext-pro/predictions"
        jpeg = await client.post(
            url, json={"input": {"prompt": "x", "output_format": "jpeg"}}, headers=auth
        )
        extra = await client.post(
            url, json={"input": {"prompt": "x"}, "model": "pro"}, headers=auth
        )
    assert jpeg.status_code == extra.status_code == 422
    assert jpeg.json()["title"] == "Input validation failed"
    assert jpeg.json()["invalid_fields"][0]["field"] == "input/output_format"
    assert len(fake.violations) == 2


def test_result_hosts_join_the_download_allowlist() -> None:
    hosts = [h for n in ("bfl", "fal", "replicate") for h in CAPABILITIES[n].result_hosts]
    fetcher = MediaFetcher(httpx.AsyncClient(), allowed_hosts=hosts)
    for url in (
        "https://delivery-eu1.bfl.ai/results/a/sample.png?sig=x",
        "https://delivery-us1.bfl.ai/results/a/sample.png",
        "https://bfldeliveryprod.blob.core.windows.net/results/a.png",
        "https://v3.fal.media/files/koala/a.jpg",
        "https://fal.media/files/a.jpg",
        "https://replicate.delivery/xezq/a/tmp.png",
        "https://pbxt.replicate.delivery/a/cat.png",
    ):
        assert fetcher.is_allowed(url), url
    assert not fetcher.is_allowed("https://replicate.delivery.evil.example/a.png")
    assert not fetcher.is_allowed("https://storage.example.com/a.png")
