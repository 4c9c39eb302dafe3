"""The engine with the real provider modules: a job a dead worker left running at BFL, fal.ai
or Replicate is polled from its saved handle (polling URL, queue URLs, prediction URL) by the
next engine, never submitted again, downloaded and delivered; a running job cancelled by its
requester is cancelled at the provider where the provider has a cancel call."""

from __future__ import annotations

import asyncio
import random

import httpx
import pytest

from bot.clock import ManualClock
from bot.jobs import EngineConfig, JobEngine, JobEvent
from bot.media import MediaFetcher
from bot.models import JobStatus
from bot.providers import build_provider
from bot.providers.base import GenerationRequest, Submitted
from bot.providers.http import HttpRetryPolicy
from storage.sql import Repository
from tests.fakes import Outcome, require_docs, running, settings_for

from .conftest import T0, RecordingDeliverer, edit

LEASE = 30.0


@pytest.mark.parametrize("name", ["bfl", "fal", "replicate"])
async def test_a_running_job_is_polled_from_its_saved_handle(name: str, repo: Repository) -> None:
    clock = ManualClock(T0)
    async with (
        running(name, docs=require_docs(), clock=clock) as fake,
        httpx.AsyncClient() as client,
    ):
        fake.script("submit", Outcome.processing(polls=2))
        settings = settings_for(fake)
        policy = HttpRetryPolicy(jitter=False)
        provider = build_provider(name, settings, client, clock, policy=policy)
        config = EngineConfig(default_provider=name, lease_seconds=LEASE)
        deliverer = RecordingDeliverer()
        fetcher = MediaFetcher.from_settings(client, settings, provider.capabilities.result_hosts)

        def engine() -> JobEngine:
            return JobEngine(
                repo,
                {name: provider},
                deliverer,
                clock=clock,
                config=config,
                fetcher=fetcher,
                rng=random.Random(7),
            )

        job = await engine().submit(edit("painted"))
        (claimed,) = await repo.claim(worker_id="dead", provider=name, now=T0, lease_seconds=LEASE)
        # The dead worker submitted and saved the handle, then died.
        request = GenerationRequest(prompt="painted")
        submitted = await provider.submit(request)
        assert isinstance(submitted, Submitted)
        moved = await repo.transition(
            claimed.id,
            expected=JobStatus.SUBMITTING,
            to=JobStatus.RUNNING,
            now=T0,
            provider_handle=submitted.handle,
        )
        assert moved is not None
        restarted = engine()
        await restarted.start()
        try:
            await restarted.run_until_idle()
        finally:
            await restarted.stop()
        final = await repo.get_job(job.id)
        assert final is not None and final.status is JobStatus.DONE, final
        assert fake.submits == 1  # only the dead worker's submission
        assert fake.polls >= 3
        history = await repo.job_history(job.id)
        assert history[-1][1] >= T0 + LEASE  # not before the lease expired
        (image,) = deliverer.delivered[job.id]
        assert image.output.width == 1024


@pytest.mark.parametrize(("name", "calls"), [("bfl", 0), ("fal", 1), ("replicate", 1)])
async def test_cancelling_a_running_job_cancels_it_at_the_provider(
    name: str, calls: int, repo: Repository
) -> None:
    clock = ManualClock(T0)
    async with (
        running(name, docs=require_docs(), clock=clock) as fake,
        httpx.AsyncClient() as client,
    ):
        fake.script("submit", Outcome.processing(polls=10**6))
        settings = settings_for(fake)
        provider = build_provider(
            name, settings, client, clock, policy=HttpRetryPolicy(jitter=False)
        )
        engine = JobEngine(
            repo,
            {name: provider},
            RecordingDeliverer(),
            clock=clock,
            config=EngineConfig(default_provider=name),
            fetcher=MediaFetcher.from_settings(client, settings, ()),
            rng=random.Random(7),
        )
        running_now = asyncio.Event()

        async def watch(event: JobEvent) -> None:
            if event.kind == "progress":
                running_now.set()

        engine.events.add(watch)
        await engine.start()
        try:
            job = await engine.submit(edit("stop me"))
            await running_now.wait()
            cancelled = await engine.cancel(job.id, by_user_id=job.user_id)
            await engine.run_until_idle()
        finally:
            await engine.stop()
        assert cancelled.status is JobStatus.CANCELLED
        assert fake.count("cancel") == calls and fake.submits == 1
