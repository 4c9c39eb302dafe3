"""``/healthz`` and ``/metrics`` served by the running process, read over HTTP; ``/metrics``
parsed with prometheus_client's own parser."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot.cli import EXIT_FAILURE, EXIT_OK, EXIT_USAGE, main
from bot.models import JobStatus
from bot.ops.http import PortUnavailable
from tests.fakes import Outcome
from tests.jobs.conftest import edit
from tests.ops.conftest import Stack, stack_for


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[Stack]:
    async with stack_for(tmp_path, http_port=0) as s:
        yield s


def _url(stack: Stack, path: str) -> str:
    server = stack.ops.server
    assert server is not None
    return f"http://{server.host}:{server.port}{path}"


async def _samples(stack: Stack) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    async with httpx.AsyncClient() as client:
        answer = await client.get(_url(stack, "/metrics"))
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain")
    found: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
    for family in text_string_to_metric_families(answer.text):
        for sample in family.samples:
            found[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return found


def _get(
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float:
    return samples[(name, frozenset(labels.items()))]


async def test_metrics_count_jobs_queue_pauses_and_spend(served: Stack) -> None:
    engine, clock = served.engine, served.clock
    served.fake.script("submit", Outcome.success(shape="data", credits=7.5))
    done = await engine.submit(edit("first"))
    await engine.run_until_idle()

    # Paused (by another process, say): two jobs wait, one is cancelled meanwhile.
    await served.repo.pause_provider("aimlapi", code="credits", detail=None, now=clock.now())
    await served.ops.pauses.tick()
    waiting = await engine.submit(edit("second", user=101))
    cancelled = await engine.submit(edit("third", user=102))
    await engine.cancel(cancelled.id, by_user_id=102)
    served.ops.metrics.discord_rate_limited()
    served.ops.metrics.gateway_latency(0, 0.042)

    samples = await _samples(served)
    assert _get(samples, "kontext_jobs_total", status="done", provider="aimlapi") == 1
    assert _get(samples, "kontext_jobs_total", status="cancelled", provider="aimlapi") == 1
    assert _get(samples, "kontext_queue_depth", provider="aimlapi") == 1
    assert _get(samples, "kontext_provider_paused", provider="aimlapi") == 1
    assert _get(samples, "kontext_jobs_in_flight") == 0
    assert _get(samples, "kontext_spend_credits", provider="aimlapi") == 7.5
    assert _get(samples, "kontext_job_wait_seconds_count", provider="aimlapi") == 1
    assert _get(samples, "kontext_job_run_seconds_count", provider="aimlapi") == 1
    assert _get(samples, "kontext_discord_rest_429_total") == 1
    assert _get(samples, "kontext_gateway_latency_seconds", shard="0") == 0.042

    await served.ops.pauses.resume("aimlapi")
    await engine.run_until_idle()
    samples = await _samples(served)
    assert _get(samples, "kontext_jobs_total", status="done", provider="aimlapi") == 2
    assert _get(samples, "kontext_queue_depth", provider="aimlapi") == 0
    assert _get(samples, "kontext_provider_paused", provider="aimlapi") == 0
    stored = await served.repo.get_job(waiting.id)
    assert stored is not None and stored.status is JobStatus.DONE
    assert done.id != waiting.id


async def test_healthz_is_200_when_all_is_well_and_503_naming_what_is_down(
    served: Stack,
) -> None:
    async with httpx.AsyncClient() as client:
        answer = await client.get(_url(served, "/healthz"))
        assert answer.status_code == 200
        body = answer.json()
        assert body["status"] == "ok" and body["down"] == []
        assert body["storage"]["ok"] and body["engine"] == {"running": True}
        assert body["providers"] == {"aimlapi": {"state": "ok"}}
        assert body["gateway"] is None  # no Discord edge in this process

        shards = {0: True, 1: False}
        served.ops.set_gateway_shards(lambda: shards)
        answer = await client.get(_url(served, "/healthz"))
        assert answer.status_code == 503
        assert answer.json()["down"] == ["gateway"]
        assert answer.json()["gateway"] == {"shards": {"0": True, "1": False}}
        shards[1] = True
        assert (await client.get(_url(served, "/healthz"))).status_code == 200

        await served.engine.stop()
        await served.repo.close()
        answer = await client.get(_url(served, "/healthz"))
        assert answer.status_code == 503
        assert answer.json()["down"] == ["storage", "engine"]
        assert (await client.get(_url(served, "/metrics"))).status_code == 503


async def test_no_port_means_no_server(stack: Stack) -> None:
    assert stack.ops.server is None


async def test_health_command_for_the_docker_health_check(
    served: Stack, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    server = served.ops.server
    assert server is not None
    monkeypatch.setenv("KONTEXT_HTTP_PORT", str(server.port))
    monkeypatch.setenv("KONTEXT_HTTP_HOST", "0.0.0.0")  # asked on loopback
    assert await asyncio.to_thread(main, ["health"]) == EXIT_OK
    assert json.loads(capsys.readouterr().out)["status"] == "ok"

    await served.repo.pause_provider("aimlapi", code="auth", detail=None, now=served.clock.now())
    await served.ops.pauses.tick()
    assert await asyncio.to_thread(main, ["health"]) == EXIT_FAILURE
    assert capsys.readouterr().err.splitlines()[-1].endswith("503: providers down.")

    monkeypatch.delenv("KONTEXT_HTTP_PORT")
    assert await asyncio.to_thread(main, ["health"]) == EXIT_USAGE


async def test_a_port_in_use_is_one_clear_error(served: Stack, tmp_path: Path) -> None:
    server = served.ops.server
    assert server is not None
    with pytest.raises(PortUnavailable, match="choose another KONTEXT_HTTP_PORT"):
        async with stack_for(tmp_path / "second", http_port=server.port):
            pass
