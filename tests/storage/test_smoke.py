from __future__ import annotations

from bot.models import JobStatus
from storage.base import Repository
from tests.storage.conftest import T0, new_job


async def test_enqueue_claim_done(repo: Repository) -> None:
    job = await repo.enqueue(new_job(), now=T0)
    assert job.status is JobStatus.QUEUED
    [claimed] = await repo.claim(worker_id="w", provider="aiml", now=T0 + 1, lease_seconds=30)
    assert claimed.id == job.id and claimed.status is JobStatus.SUBMITTING
    done = await repo.transition(
        job.id, expected=JobStatus.SUBMITTING, to=JobStatus.DONE, now=T0 + 2
    )
    assert done is not None and done.finished_at == T0 + 2
    assert await repo.count_running() == 0
