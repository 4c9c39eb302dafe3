"""A batch on one PostgreSQL database shared by processes: a cancel made in one stops every
request of the batch held in another."""

from __future__ import annotations

import asyncio

from bench.fakeprovider import FakeProvider, Plan, capabilities
from bot.models import GuildSettings, JobParams, JobStatus
from storage.sql import Repository

from .conftest import T0, Harness, edit, until_running
from .test_shared_engine import NO_SAFETY_POLL, _front, pg_url, shared  # noqa: F401


async def test_a_cancel_elsewhere_stops_every_request_of_a_batch(
    shared: tuple[Harness, Repository],  # noqa: F811
) -> None:
    h, front_repo = shared
    caps = capabilities("fake", concurrency=2).model_copy(update={"max_num_images": 1})
    single = FakeProvider(caps, clock=h.clock, default=Plan(sync=False, finish_after=10_000.0))
    h.providers["fake"] = h.provider = single
    await h.repo.save_guild_settings(GuildSettings(guild_id=1, max_user_active=4), now=T0)
    worker = h.engine(NO_SAFETY_POLL)
    await worker.start()
    front, front_provider = _front(h, front_repo)

    request = edit("three").model_copy(update={"params": JobParams(num_images=3)})
    job = await front.submit(request)
    await until_running(h, job.id)
    held = worker._active[job.id].task
    await front.cancel(job.id, by_user_id=100)
    await asyncio.wait_for(held, 10)
    final = await h.repo.get_job(job.id)
    assert final is not None and final.status is JobStatus.CANCELLED
    for _ in range(100):  # the holder tells the provider in a task of its own
        if len(single.cancels) == 3:
            break
        await asyncio.sleep(0)
    assert sorted(single.cancels) == sorted(single.handle_of("three"))
    assert len(single.cancels) == 3 and front_provider.cancels == []
    assert single.submits["three"] == 3
