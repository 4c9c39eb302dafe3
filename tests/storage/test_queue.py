"""The queue: enqueue with limits, the fair claim, leases, guarded transitions, counts."""

from __future__ import annotations

import asyncio

import pytest

from bot.models import JobStatus
from storage import open_repository
from storage.base import EnqueueLimits, LimitExceeded, LimitKind
from storage.sql import Repository
from tests.storage.conftest import T0, new_job

LEASE = 30.0
UNCAPPED = EnqueueLimits(max_guild_running=1000)  # claimed jobs stay running in these tests


async def claim_one(repo: Repository, now: float = T0, provider: str = "aiml") -> int | None:
    jobs = await repo.claim(worker_id="w1", provider=provider, now=now, lease_seconds=LEASE)
    return jobs[0].id if jobs else None


async def test_enqueue_persists_the_job_and_its_references(repo: Repository) -> None:
    blob = await repo.put_blob(b"reference bytes", now=T0)
    from bot.models import NewReference, ReferenceSource

    refs = (
        NewReference(source=ReferenceSource.ATTACHMENT, content_hash=blob, message_id=5),
        NewReference(source=ReferenceSource.URL, content_hash=blob, url="https://x.test/a.png"),
    )
    job = await repo.enqueue(new_job(references=refs), now=T0)
    assert job.status is JobStatus.QUEUED and job.created_at == T0
    assert await repo.get_job(job.id) == job
    stored = await repo.get_references(job.id)
    assert [(r.position, r.source, r.url) for r in stored] == [
        (0, ReferenceSource.ATTACHMENT, None),
        (1, ReferenceSource.URL, "https://x.test/a.png"),
    ]
    assert await repo.get_blob(stored[0].content_hash) == b"reference bytes"
    assert await repo.job_history(job.id) == [(JobStatus.QUEUED, T0)]


async def test_guilds_take_turns_and_a_new_guild_goes_first(repo: Repository) -> None:
    a_jobs = [
        (await repo.enqueue(new_job(guild_id=1), now=T0 + i, limits=UNCAPPED)).id for i in range(10)
    ]
    b_job = (await repo.enqueue(new_job(guild_id=2), now=T0 + 20)).id
    order = [await claim_one(repo) for _ in range(11)]
    assert order[0] == a_jobs[0]
    assert order[1] == b_job  # B never served: it goes before A's second job
    assert order[2:] == a_jobs[1:]
    assert await claim_one(repo) is None


async def test_users_take_turns_inside_a_guild(repo: Repository) -> None:
    first = [(await repo.enqueue(new_job(user_id=1), now=T0, limits=UNCAPPED)).id for _ in range(3)]
    second = [(await repo.enqueue(new_job(user_id=2), now=T0)).id for _ in range(2)]
    order = [await claim_one(repo) for _ in range(5)]
    assert order == [first[0], second[0], first[1], second[1], first[2]]


async def test_claim_takes_only_its_provider(repo: Repository) -> None:
    other = await repo.enqueue(new_job(provider="modelslab"), now=T0)
    assert await claim_one(repo, provider="aiml") is None
    assert await claim_one(repo, provider="modelslab") == other.id


async def test_run_after_is_respected_without_blocking_other_guilds(repo: Repository) -> None:
    delayed = await repo.enqueue(new_job(guild_id=1), now=T0)
    await repo.claim(worker_id="w", provider="aiml", now=T0, lease_seconds=LEASE)
    back = await repo.transition(
        delayed.id, expected=JobStatus.SUBMITTING, to=JobStatus.QUEUED, now=T0, run_after=T0 + 60
    )
    assert back is not None and back.lease_owner is None and back.run_after == T0 + 60
    other = await repo.enqueue(new_job(guild_id=2), now=T0 + 1)
    assert await claim_one(repo, now=T0 + 1) == other.id
    assert await claim_one(repo, now=T0 + 59) is None
    assert await claim_one(repo, now=T0 + 60) == delayed.id


async def test_guild_running_cap_is_respected(repo: Repository) -> None:
    limits = EnqueueLimits(max_guild_running=2)
    busy = [(await repo.enqueue(new_job(guild_id=1), now=T0, limits=limits)).id for _ in range(4)]
    other = await repo.enqueue(new_job(guild_id=2), now=T0)
    claimed = await repo.claim(worker_id="w", provider="aiml", now=T0, lease_seconds=LEASE, limit=5)
    assert sorted(j.id for j in claimed) == sorted([busy[0], busy[1], other.id])
    assert await repo.count_running(guild_id=1) == 2
    assert await claim_one(repo) is None
    await repo.transition(busy[0], expected=JobStatus.SUBMITTING, to=JobStatus.FAILED, now=T0)
    assert await repo.count_running(guild_id=1) == 1
    assert await claim_one(repo) == busy[2]


async def test_concurrent_claimers_take_every_job_exactly_once(db_url: str) -> None:
    repos = [open_repository(db_url) for _ in range(4 if db_url.startswith("postgres") else 1)]
    for r in repos:
        await r.connect()
    try:
        main = repos[0]
        for guild in range(50):
            for i in range(20):
                await main.enqueue(new_job(guild_id=guild, user_id=i % 3), now=T0, limits=UNCAPPED)

        async def worker(n: int) -> list[int]:
            repo = repos[n % len(repos)]
            taken: list[int] = []
            while batch := await repo.claim(
                worker_id=f"w{n}", provider="aiml", now=T0, lease_seconds=LEASE, limit=7
            ):
                taken.extend(j.id for j in batch)
            return taken

        results = await asyncio.gather(*(worker(n) for n in range(4)))
        every = [job_id for taken in results for job_id in taken]
        assert len(every) == 1000
        assert len(set(every)) == 1000
        assert await main.count_queued() == 0
        assert await main.count_running() == 1000
    finally:
        for r in repos:
            await r.close()


async def test_expired_lease_is_reclaimed_keeping_status_and_handle(repo: Repository) -> None:
    job = await repo.enqueue(new_job(), now=T0)
    await repo.claim(worker_id="dead", provider="aiml", now=T0, lease_seconds=LEASE)
    running = await repo.transition(
        job.id,
        expected=JobStatus.SUBMITTING,
        to=JobStatus.RUNNING,
        now=T0 + 1,
        provider_handle="req-123",
    )
    assert running is not None
    assert (
        await repo.reclaim_expired(worker_id="new", now=T0 + LEASE - 1, lease_seconds=LEASE) == []
    )
    assert (
        await repo.heartbeat(worker_id="dead", job_ids=[job.id], now=T0 + 10, lease_seconds=LEASE)
        == 1
    )
    assert (
        await repo.reclaim_expired(worker_id="new", now=T0 + LEASE + 1, lease_seconds=LEASE) == []
    )
    [taken] = await repo.reclaim_expired(worker_id="new", now=T0 + 41, lease_seconds=LEASE)
    assert taken.id == job.id
    assert taken.status is JobStatus.RUNNING and taken.provider_handle == "req-123"
    assert taken.lease_owner == "new" and taken.lease_expires_at == T0 + 41 + LEASE
    assert (
        await repo.heartbeat(worker_id="dead", job_ids=[job.id], now=T0 + 42, lease_seconds=LEASE)
        == 0
    )
    assert await repo.count_running() == 1  # a reclaim moves no counter


async def test_transitions_are_compare_and_set(repo: Repository) -> None:
    job = await repo.enqueue(new_job(), now=T0)
    assert (
        await repo.transition(job.id, expected=JobStatus.RUNNING, to=JobStatus.DONE, now=T0) is None
    )
    await repo.claim(worker_id="w", provider="aiml", now=T0 + 1, lease_seconds=LEASE)
    steps = [JobStatus.RUNNING, JobStatus.DOWNLOADING, JobStatus.DELIVERING, JobStatus.DONE]
    previous = JobStatus.SUBMITTING
    for i, status in enumerate(steps, start=2):
        moved = await repo.transition(job.id, expected=previous, to=status, now=T0 + i)
        assert moved is not None and moved.status is status
        previous = status
    done = await repo.get_job(job.id)
    assert done is not None and done.finished_at == T0 + 5 and done.lease_owner is None
    again = await repo.transition(
        job.id, expected=[JobStatus.DONE, JobStatus.RUNNING], to=JobStatus.RUNNING, now=T0 + 9
    )
    assert again is None
    assert (await repo.get_job(job.id)).status is JobStatus.DONE  # type: ignore[union-attr]
    assert await repo.job_history(job.id) == [
        (JobStatus.QUEUED, T0),
        (JobStatus.SUBMITTING, T0 + 1),
        (JobStatus.RUNNING, T0 + 2),
        (JobStatus.DOWNLOADING, T0 + 3),
        (JobStatus.DELIVERING, T0 + 4),
        (JobStatus.DONE, T0 + 5),
    ]
    assert await repo.recent_durations("aiml") == [4.0]
    assert await repo.count_running() == 0


async def test_transition_sets_columns_and_rejects_unknown_ones(repo: Repository) -> None:
    job = await repo.enqueue(new_job(), now=T0)
    cancelled = await repo.transition(
        job.id,
        expected=JobStatus.QUEUED,
        to=JobStatus.CANCELLED,
        now=T0 + 1,
        error_code="cancelled",
        error_message="Cancelled by the requester.",
        credits=2,
    )
    assert (
        cancelled is not None and cancelled.credits == 2.0 and cancelled.error_code == "cancelled"
    )
    assert await repo.count_queued() == 0
    with pytest.raises(TypeError):
        await repo.transition(job.id, expected=JobStatus.QUEUED, to=JobStatus.RUNNING, now=T0, id=3)
    updated = await repo.update_job(job.id, now=T0 + 2, status_message_id=77, thread_id=88)
    assert updated is not None and (updated.status_message_id, updated.thread_id) == (77, 88)
    with pytest.raises(TypeError):
        await repo.update_job(job.id, now=T0, status="queued")


async def test_limits_refuse_and_write_nothing(repo: Repository) -> None:
    await repo.enqueue(new_job(user_id=1), now=T0, limits=EnqueueLimits(max_user_active=2))
    await repo.enqueue(new_job(user_id=1), now=T0, limits=EnqueueLimits(max_user_active=2))
    with pytest.raises(LimitExceeded) as raised:
        await repo.enqueue(new_job(user_id=1), now=T0, limits=EnqueueLimits(max_user_active=2))
    assert (raised.value.limit, raised.value.current, raised.value.maximum) == (
        LimitKind.USER_ACTIVE,
        2,
        2,
    )
    assert await repo.count_active(guild_id=1, user_id=1) == 2
    with pytest.raises(LimitExceeded) as raised:
        await repo.enqueue(new_job(user_id=2), now=T0, limits=EnqueueLimits(max_guild_queue=2))
    assert raised.value.limit is LimitKind.GUILD_QUEUE
    assert await repo.count_queued(guild_id=1) == 2
    assert len(await repo.list_jobs(guild_id=1)) == 2


async def test_daily_quota_counts_today_and_skips_failed_jobs(repo: Repository) -> None:
    quota = EnqueueLimits(daily_quota=2)
    day = T0 - T0 % 86_400
    yesterday = await repo.enqueue(new_job(), now=day - 10, limits=quota)
    first = await repo.enqueue(new_job(), now=day + 10, limits=quota)
    await repo.transition(first.id, expected=JobStatus.QUEUED, to=JobStatus.FAILED, now=day + 11)
    await repo.enqueue(new_job(), now=day + 20, limits=quota)
    await repo.enqueue(new_job(), now=day + 30, limits=quota)
    with pytest.raises(LimitExceeded) as raised:
        await repo.enqueue(new_job(), now=day + 40, limits=quota)
    assert (raised.value.limit, raised.value.current) == (LimitKind.DAILY_QUOTA, 2)
    assert yesterday.id < first.id
    # 0 means unlimited
    await repo.enqueue(new_job(), now=day + 50, limits=EnqueueLimits(daily_quota=0))


async def test_queue_position_follows_the_claim_order(repo: Repository) -> None:
    a = [(await repo.enqueue(new_job(guild_id=1), now=T0)).id for _ in range(3)]
    b = (await repo.enqueue(new_job(guild_id=2), now=T0)).id
    assert [await repo.queue_position(i) for i in [*a, b]] == [1, 3, 4, 2]
    await claim_one(repo)
    assert await repo.queue_position(a[0]) is None
    assert [await repo.queue_position(i) for i in [a[1], a[2], b]] == [2, 3, 1]


async def test_counts_and_listing(repo: Repository) -> None:
    for user in (1, 1, 2):
        await repo.enqueue(new_job(guild_id=5, user_id=user), now=T0)
    await repo.enqueue(new_job(guild_id=6, user_id=1), now=T0)
    await claim_one(repo)
    assert await repo.count_active(guild_id=5) == 3
    assert await repo.count_active(guild_id=5, user_id=1) == 2
    assert await repo.count_queued() == 3
    assert await repo.count_running() == 1
    newest = await repo.list_jobs(guild_id=5)
    assert [j.id for j in newest] == sorted((j.id for j in newest), reverse=True)
    queued = await repo.list_jobs(statuses=[JobStatus.QUEUED], limit=2)
    assert len(queued) == 2 and all(j.status is JobStatus.QUEUED for j in queued)


async def test_racing_enqueues_cannot_both_pass_a_limit(db_url: str) -> None:
    repos = [open_repository(db_url) for _ in range(2 if db_url.startswith("postgres") else 1)]
    for r in repos:
        await r.connect()
    try:
        limits = EnqueueLimits(max_user_active=3)

        async def attempt(n: int) -> bool:
            try:
                await repos[n % len(repos)].enqueue(new_job(user_id=9), now=T0, limits=limits)
            except LimitExceeded:
                return False
            return True

        outcomes = await asyncio.gather(*(attempt(n) for n in range(12)))
        assert outcomes.count(True) == 3
        assert await repos[0].count_active(guild_id=1, user_id=9) == 3
    finally:
        for r in repos:
            await r.close()


async def test_racing_reclaimers_take_each_expired_job_once(db_url: str) -> None:
    repos = [open_repository(db_url) for _ in range(3 if db_url.startswith("postgres") else 1)]
    for r in repos:
        await r.connect()
    try:
        main = repos[0]
        for guild in range(30):
            await main.enqueue(new_job(guild_id=guild), now=T0)
        claimed = await main.claim(
            worker_id="dead", provider="aiml", now=T0, lease_seconds=LEASE, limit=30
        )
        assert len(claimed) == 30
        later = T0 + LEASE + 1
        results = await asyncio.gather(
            *(
                repos[n % len(repos)].reclaim_expired(
                    worker_id=f"w{n}", now=later, lease_seconds=LEASE
                )
                for n in range(3)
            )
        )
        taken = [job.id for batch in results for job in batch]
        assert sorted(taken) == sorted(job.id for job in claimed)
    finally:
        for r in repos:
            await r.close()


async def test_batch_claim_takes_turns_like_single_claims(repo: Repository) -> None:
    a = [(await repo.enqueue(new_job(guild_id=1), now=T0, limits=UNCAPPED)).id for _ in range(3)]
    b = [(await repo.enqueue(new_job(guild_id=2), now=T0, limits=UNCAPPED)).id for _ in range(2)]
    batch = await repo.claim(worker_id="w", provider="aiml", now=T0, lease_seconds=LEASE, limit=4)
    assert [j.id for j in batch] == [a[0], b[0], a[1], b[1]]
    assert (
        await repo.claim(worker_id="w", provider="aiml", now=T0, lease_seconds=LEASE, limit=0) == []
    )


async def test_statements_never_land_inside_a_rolled_back_transaction(repo: Repository) -> None:
    """Enqueues with references are multi-statement transactions, and refused ones roll back;
    single statements running meanwhile (message index writes) must all survive."""
    from bot.models import MessageKind, MessageRef, NewReference, ReferenceSource

    blob = await repo.put_blob(b"ref", now=T0)
    anchor = await repo.enqueue(new_job(guild_id=2), now=T0)
    ref = (NewReference(source=ReferenceSource.UPLOAD, content_hash=blob),)
    limits = EnqueueLimits(max_user_active=10)

    async def enqueue(n: int) -> bool:
        try:
            await repo.enqueue(new_job(user_id=1, references=ref), now=T0, limits=limits)
        except LimitExceeded:
            return False
        return True

    async def index(n: int) -> None:
        message = MessageRef(
            message_id=1000 + n, channel_id=1, job_id=anchor.id, kind=MessageKind.STATUS
        )
        await repo.index_message(message, now=T0)

    assert [await enqueue(n) for n in range(10)] == [True] * 10
    tasks = [task for n in range(30) for task in (enqueue(n), index(n))]
    results = await asyncio.gather(*tasks)
    assert results[0::2] == [False] * 30  # every one refused, its transaction rolled back
    assert all([await repo.lookup_message(1000 + n) for n in range(30)])
    assert await repo.count_active(guild_id=1, user_id=1) == 10
    assert await repo.count_queued() == 11


async def test_a_queued_job_can_move_to_another_provider(repo: Repository) -> None:
    job = await repo.enqueue(new_job(provider="aiml"), now=T0)
    moved = await repo.transition(
        job.id, expected=JobStatus.QUEUED, to=JobStatus.QUEUED, now=T0 + 1, provider="wavespeed"
    )
    assert moved is not None and moved.provider == "wavespeed"
    assert await claim_one(repo, provider="aiml") is None
    assert await repo.queue_position(job.id) == 1
    assert await claim_one(repo, provider="wavespeed") == job.id
    assert await repo.count_queued() == 0
    assert await repo.job_history(job.id) == [(JobStatus.QUEUED, T0), (JobStatus.SUBMITTING, T0)]
