"""A claim is not fooled by a queued job that a plain update holds for a moment (PostgreSQL).

Right after enqueueing, the Discord front end stores the job's status message id; a claim
racing that update used to pass the job over (``SKIP LOCKED``) and leave it queued until the
engine's safety poll, 15 s later.
"""

from __future__ import annotations

import asyncio

import asyncpg

from bot.models import JobKind, JobStatus, NewJob
from storage import open_repository
from tests import pg

T0 = 1_800_000_000.0


async def _lock_waiters(conn: asyncpg.Connection) -> int:
    count = await conn.fetchval(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
        "AND wait_event_type = 'Lock'"
    )
    return int(count)


async def test_a_claim_waits_for_a_short_row_lock_instead_of_skipping(pg_database: str) -> None:
    await pg.reset_database(pg_database)
    repo = open_repository(pg_database)
    await repo.connect()
    holder = await asyncpg.connect(pg_database)
    try:
        job = await repo.enqueue(
            NewJob(
                guild_id=1, channel_id=2, user_id=3, kind=JobKind.EDIT, prompt="p", provider="x"
            ),
            now=T0,
        )
        update = holder.transaction()
        await update.start()
        await holder.execute("UPDATE jobs SET status_message_id = 9 WHERE id = $1", job.id)
        claim = asyncio.create_task(
            repo.claim(worker_id="w", provider="x", now=T0, lease_seconds=30.0)
        )
        async with asyncio.timeout(10):  # poll for a state (the claim waiting on the lock)
            while True:
                if claim.done() or await _lock_waiters(holder) > 0:
                    break
                await asyncio.sleep(0.005)
        assert not claim.done(), f"the claim skipped the locked job: {claim.result()}"
        await update.commit()
        claimed = await claim
        assert [j.id for j in claimed] == [job.id]
        assert claimed[0].status is JobStatus.SUBMITTING
    finally:
        await holder.close()
        await repo.close()
