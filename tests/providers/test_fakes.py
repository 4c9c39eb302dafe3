"""The fakes themselves: they must catch what the real providers would refuse."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.fakes import AimlApiFake, ModelsLabFake, WaveSpeedFake, require_docs
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
