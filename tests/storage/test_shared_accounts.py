"""Processes sharing one PostgreSQL database: account limits in the claim, notifications.

Each test opens several repositories (each its own connection pool, as separate processes
would) on the same database.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import pytest

from bot.models import JobStatus
from storage import open_repository
from storage.base import AccountLimits, QueueSignal, SignalKind
from storage.pgshared import Listener
from storage.sql import Repository
from tests import pg

from .conftest import T0, new_job

LEASE = 30.0


@pytest.fixture
async def repos(pg_database: str) -> AsyncIterator[list[Repository]]:
    """Four repositories on one emptied database, like four processes."""
    await pg.reset_database(pg_database)
    opened: list[Repository] = []
    try:
        for _ in range(4):
            repo = open_repository(pg_database)
            await repo.connect()
            opened.append(repo)
        yield opened
    finally:
        for repo in opened:
            await repo.close()


async def _claim(repo: Repository, account: AccountLimits, *, now: float = T0, limit: int = 10):
    return await repo.claim(
        worker_id=f"w{id(repo)}",
        provider="aiml",
        now=now,
        lease_seconds=LEASE,
        limit=limit,
        account=account,
    )


async def test_the_account_concurrency_holds_across_processes(repos: list[Repository]) -> None:
    first, second = repos[0], repos[1]
    for guild in range(1, 6):
        for user in range(2):
            await first.enqueue(new_job(guild, 10 + user), now=T0)
    account = AccountLimits(concurrency=3)
    taken = await _claim(first, account)
    assert len(taken) == 3
    assert await _claim(second, account) == []
    # Running at the provider still holds the slot; downloading no longer does.
    running = await first.transition(
        taken[0].id,
        expected=JobStatus.SUBMITTING,
        to=JobStatus.RUNNING,
        now=T0,
        provider_handle="h",
    )
    assert running is not None
    assert await _claim(second, account) == []
    await first.transition(
        taken[0].id, expected=JobStatus.RUNNING, to=JobStatus.DOWNLOADING, now=T0
    )
    (next_job,) = await _claim(second, account)
    assert next_job.status is JobStatus.SUBMITTING
    # Another provider's account is its own.
    await first.enqueue(new_job(9, 9, provider="other"), now=T0)
    other = await second.claim(
        worker_id="w", provider="other", now=T0, lease_seconds=LEASE, account=account
    )
    assert len(other) == 1


async def test_racing_claims_never_overrun_the_account(repos: list[Repository]) -> None:
    for index in range(40):
        await repos[0].enqueue(new_job(1 + index % 4, index), now=T0)
    account = AccountLimits(concurrency=5)
    batches = await asyncio.gather(
        *(_claim(repo, account, limit=4) for repo in repos for _ in range(3))
    )
    assert sum(len(batch) for batch in batches) == 5
    assert await repos[0].count_running() == 5


async def test_the_token_bucket_is_shared(repos: list[Repository]) -> None:
    first, second = repos[0], repos[1]
    for index in range(6):
        await first.enqueue(new_job(1 + index, index), now=T0)
    account = AccountLimits(concurrency=10, rate_per_minute=2.0, burst=2)
    assert len(await _claim(first, account)) == 2  # the burst
    assert await _claim(second, account, now=T0 + 1) == []
    assert await second.account_wait("aiml", now=T0 + 1, account=account) == pytest.approx(29.0)
    assert len(await _claim(second, account, now=T0 + 30)) == 1  # one token per 30 s
    assert await _claim(first, account, now=T0 + 31) == []
    assert await first.account_wait("aiml", now=T0 + 31, account=account) == pytest.approx(29.0)


async def test_a_provider_hold_off_binds_every_process(repos: list[Repository]) -> None:
    first, second = repos[0], repos[1]
    await first.enqueue(new_job(), now=T0)
    account = AccountLimits(concurrency=4)
    await first.block_account("aiml", until=T0 + 5)
    assert await _claim(second, account, now=T0 + 1) == []
    assert await second.account_wait("aiml", now=T0 + 1, account=account) == pytest.approx(4.0)
    assert len(await _claim(second, account, now=T0 + 5)) == 1


async def test_guilds_take_turns_across_processes(repos: list[Repository]) -> None:
    first = repos[0]
    for index in range(4):
        await first.enqueue(new_job(1, 10 + index), now=T0)  # a busy guild first
    await first.enqueue(new_job(2, 20), now=T0)
    await first.enqueue(new_job(3, 30), now=T0)
    account = AccountLimits(concurrency=10)
    order = []
    for turn in range(5):
        (job,) = await _claim(repos[turn % 3], account, limit=1)
        order.append((job.guild_id, job.user_id))
    assert order == [(1, 10), (2, 20), (3, 30), (1, 11), (1, 12)]


async def test_other_processes_hear_of_queued_work_freed_slots_and_cancels(
    repos: list[Repository],
) -> None:
    writer, listener = repos[0], repos[1]
    heard: asyncio.Queue[QueueSignal] = asyncio.Queue()
    subscription = await listener.subscribe(heard.put_nowait)
    assert subscription is not None
    try:
        job = await writer.enqueue(new_job(provider="aiml"), now=T0)
        assert await asyncio.wait_for(heard.get(), 10) == QueueSignal(
            SignalKind.QUEUED, provider="aiml"
        )
        (claimed,) = await _claim(writer, AccountLimits(concurrency=1), limit=1)
        await writer.transition(
            claimed.id, expected=JobStatus.SUBMITTING, to=JobStatus.DOWNLOADING, now=T0
        )
        assert await asyncio.wait_for(heard.get(), 10) == QueueSignal(
            SignalKind.FREED, provider="aiml"
        )
        await writer.transition(
            job.id, expected=JobStatus.DOWNLOADING, to=JobStatus.CANCELLED, now=T0
        )
        assert await asyncio.wait_for(heard.get(), 10) == QueueSignal(
            SignalKind.CANCELLED, job_id=job.id
        )
        assert heard.empty()
    finally:
        await subscription.close()


async def test_sqlite_has_no_one_to_share_with(tmp_path) -> None:  # type: ignore[no-untyped-def]
    repo = open_repository(f"sqlite:///{tmp_path / 'one.db'}")
    await repo.connect()
    try:
        assert repo.multi_process is False
        assert await repo.subscribe(lambda signal: None) is None
        await repo.release_account(1)  # nothing to free: the engine's gate holds the account
        await repo.enqueue(new_job(), now=T0)
        # The engine's own gate holds the account in the one process: storage ignores it.
        claimed = await _claim(repo, AccountLimits(concurrency=1, rate_per_minute=1.0))
        assert len(claimed) == 1
    finally:
        await repo.close()


async def test_a_lost_listening_connection_comes_back_and_says_so(
    repos: list[Repository], pg_database: str
) -> None:
    heard: asyncio.Queue[QueueSignal] = asyncio.Queue()
    subscription = await repos[1].subscribe(heard.put_nowait)
    assert isinstance(subscription, Listener)
    try:
        admin = await asyncpg.connect(pg_database)
        try:
            await admin.execute("SELECT pg_terminate_backend($1)", subscription.server_pid())
        finally:
            await admin.close()
        # Signals sent meanwhile are lost: the listener says so once it is back.
        assert await asyncio.wait_for(heard.get(), 30) == QueueSignal(SignalKind.RESYNC)
        await repos[0].enqueue(new_job(), now=T0)
        assert await asyncio.wait_for(heard.get(), 10) == QueueSignal(
            SignalKind.QUEUED, provider="aiml"
        )
    finally:
        await subscription.close()


async def test_a_job_the_provider_is_done_with_frees_its_slot_at_once(
    repos: list[Repository], pg_database: str
) -> None:
    first, second = repos[0], repos[1]
    await first.enqueue(new_job(1, 1), now=T0)
    await first.enqueue(new_job(2, 2), now=T0)
    account = AccountLimits(concurrency=1)
    (job,) = await _claim(first, account)
    assert await _claim(second, account) == []
    heard: asyncio.Queue[QueueSignal] = asyncio.Queue()
    subscription = await second.subscribe(heard.put_nowait)
    assert subscription is not None
    try:
        # Its outputs are still being stored: the status says submitting, the slot is free.
        await first.release_account(job.id)
        assert await asyncio.wait_for(heard.get(), 10) == QueueSignal(
            SignalKind.FREED, provider="aiml"
        )
    finally:
        await subscription.close()
    (other,) = await _claim(second, account)
    assert other.id != job.id
    # The mark goes with the job's next status; a job holding no slot has none to free.
    await first.transition(job.id, expected=JobStatus.SUBMITTING, to=JobStatus.DELIVERING, now=T0)
    await first.release_account(job.id)
    conn = await asyncpg.connect(pg_database)
    try:
        assert await conn.fetchval("SELECT COUNT(*) FROM provider_released") == 0
    finally:
        await conn.close()
    assert await _claim(first, account) == []  # the other job still holds the one slot


async def test_a_claim_passes_a_released_slot_straight_to_the_next_job(
    repos: list[Repository],
) -> None:
    first, second = repos[0], repos[1]
    for guild in range(1, 3):
        await first.enqueue(new_job(guild, guild), now=T0)
    account = AccountLimits(concurrency=1)
    (done,) = await _claim(first, account)
    heard: asyncio.Queue[QueueSignal] = asyncio.Queue()
    subscription = await second.subscribe(heard.put_nowait)
    assert subscription is not None
    try:
        # The provider is done with the job: the claim frees its slot and takes it at once,
        # so nobody else is woken for it, not even when the job's status moves on.
        (following,) = await first.claim(
            worker_id="w1",
            provider="aiml",
            now=T0,
            lease_seconds=LEASE,
            account=account,
            release=[done.id],
        )
        assert following.guild_id == 2
        await first.transition(
            done.id, expected=JobStatus.SUBMITTING, to=JobStatus.DELIVERING, now=T0
        )
        assert await _claim(second, account) == []  # the one slot is taken
        # Released with nothing left to claim for it here: the others hear of the free slot.
        assert (
            await first.claim(
                worker_id="w1",
                provider="aiml",
                now=T0,
                lease_seconds=LEASE,
                account=account,
                release=[following.id],
            )
            == []
        )
        assert await asyncio.wait_for(heard.get(), 10) == QueueSignal(
            SignalKind.FREED, provider="aiml"
        )
        assert heard.empty()
    finally:
        await subscription.close()
    await first.enqueue(new_job(3, 3), now=T0)
    assert len(await _claim(second, account)) == 1
