"""The running bot (``open_app``, fake Discord, AIML fake) serves /healthz and /metrics."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.bot.conftest import Harness, harness, provider  # noqa: F401 - fixtures by name
from tests.discord_fake.plugin import discord_spec, fake_discord  # noqa: F401


async def test_the_running_bot_reports_health_and_counts_jobs(
    harness: Harness,  # noqa: F811
) -> None:
    app = await harness.start(http_port=0)
    server = app.ops.server
    assert server is not None
    base = f"http://{server.host}:{server.port}"
    delivered = await harness.edit_done("make it blue")
    async with httpx.AsyncClient() as client:
        health = await client.get(f"{base}/healthz")
        metrics = await client.get(f"{base}/metrics")
    assert health.status_code == 200, health.text
    assert health.json()["engine"] == {"running": True}
    assert health.json()["providers"] == {"aimlapi": {"state": "ok"}}
    done = [
        sample.value
        for family in text_string_to_metric_families(metrics.text)
        for sample in family.samples
        if sample.name == "kontext_jobs_total" and sample.labels.get("status") == "done"
    ]
    assert done == [1.0] and delivered.job_id
