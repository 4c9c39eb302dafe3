"""A batch of 4 with image 3 picked, on each provider's fake: the real provider module, the
real engine and storage (SQLite and PostgreSQL), a manual clock."""

from __future__ import annotations

import httpx
import pytest

from bot.clock import ManualClock
from bot.creative.service import CreativeService
from bot.creative_models import RequestOptions
from bot.jobs import EngineConfig, JobEngine, ReferenceInput
from bot.media import MediaFetcher
from bot.models import GuildSettings, JobKind, JobStatus
from bot.providers import CAPABILITIES, build_provider
from storage.sql import Repository
from tests.fakes import running, settings_for
from tests.jobs.conftest import RecordingDeliverer
from tests.jobs.conftest import reference as jobs_reference
from tests.storage.conftest import T0


def reference() -> ReferenceInput:
    """A local reference (no public URL): each provider module sends or uploads its bytes."""
    return jobs_reference().model_copy(update={"url": None})


@pytest.mark.parametrize("name", ["aimlapi", "modelslab", "wavespeed"])
async def test_count_four_then_pick_three(repo: Repository, name: str) -> None:
    clock = ManualClock(T0)
    await repo.save_guild_settings(GuildSettings(guild_id=1, max_user_active=4), now=T0)
    async with running(name, clock=clock) as fake, httpx.AsyncClient() as http:
        settings = settings_for(fake)
        provider = build_provider(name, settings, http, clock)
        fetcher = MediaFetcher.from_settings(http, settings, CAPABILITIES[name].result_hosts)
        deliverer = RecordingDeliverer()
        engine = JobEngine(
            repo,
            {name: provider},
            deliverer,
            clock=clock,
            config=EngineConfig(default_provider=name),
            fetcher=fetcher,
        )
        creative = CreativeService(
            repo, clock, catalog={name: CAPABILITIES[name]}, default_provider=name
        )
        resolved = await creative.resolve(1, 7, RequestOptions(prompt="make it night", count=4))
        request = creative.edit_request(
            resolved, guild_id=1, channel_id=5, user_id=7, kind=JobKind.EDIT, images=(reference(),)
        )
        await engine.start()
        try:
            job = await engine.submit(request)
            await engine.run_until_idle()
        finally:
            await engine.stop()
        submits = [r for r in fake.requests if r.endpoint == "submit"]
        if name == "wavespeed":  # one image per request: four requests, four seeds
            assert len(submits) == 4
            assert len({r.body["seed"] for r in submits}) == 4
        else:  # num_images / samples: one request
            assert len(submits) == 1
        done = await repo.get_job(job.id)
        assert done is not None and done.status is JobStatus.DONE
        assert [i.output.number for i in deliverer.delivered[job.id]] == [1, 2, 3, 4]

        picked = await creative.pick(job.id, 3, by_user_id=7)
        assert picked.created and picked.source.number == 3
        assert picked.job.kind is JobKind.PICK and picked.job.parent_output_id == picked.source.id
        chain = await repo.lineage(picked.output.id)
        assert [j.id for j, _ in chain] == [job.id, picked.job.id]
        again = await creative.pick(job.id, 3, by_user_id=7)
        assert not again.created and again.job.id == picked.job.id
