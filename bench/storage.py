"""Storage throughput: full job cycles per second on each backend.

A cycle is what the engine does for one job: enqueue, claim, then four transitions
(running, downloading, delivering, done). Measured with 1 and 4 concurrent workers, on an
empty queue and behind a backlog of 10,000 queued jobs from 1,000 guilds (so the fair claim
has real lanes to choose from). PostgreSQL runs in a throw-away database and is skipped with
a note when unreachable. Prints readable lines, then one JSON line.

    python -m bench.storage [--cycles N]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from bot.models import JobKind, JobStatus, NewJob
from storage import open_repository
from storage.base import EnqueueLimits
from storage.sql import Repository

T0 = 1_800_000_000.0
LIMITS = EnqueueLimits(max_user_active=1_000_000, max_guild_running=1_000_000)
STEPS = (JobStatus.RUNNING, JobStatus.DOWNLOADING, JobStatus.DELIVERING, JobStatus.DONE)
BACKLOG_JOBS = 10_000
BACKLOG_GUILDS = 1_000


def _job(n: int, guilds: int) -> NewJob:
    return NewJob(
        guild_id=1 + n % guilds,
        channel_id=1,
        user_id=1 + (n // guilds) % 5,
        kind=JobKind.EDIT,
        prompt="benchmark",
        provider="bench",
    )


async def _cycles(repo: Repository, workers: int, cycles: int) -> float:
    """Run ``cycles`` full cycles over ``workers`` tasks; returns cycles per second."""
    counter = iter(range(cycles))

    async def worker(name: str) -> None:
        for n in counter:
            now = T0 + n
            await repo.enqueue(_job(n, 50), now=now, limits=LIMITS)
            claimed = await repo.claim(worker_id=name, provider="bench", now=now, lease_seconds=60)
            for job in claimed:
                previous = job.status
                for step in STEPS:
                    moved = await repo.transition(job.id, expected=previous, to=step, now=now)
                    assert moved is not None, "a transition of a claimed job was refused"
                    previous = step

    started = time.perf_counter()
    await asyncio.gather(*(worker(f"w{i}") for i in range(workers)))
    return cycles / (time.perf_counter() - started)


async def _fill_backlog(repo: Repository) -> None:
    for n in range(BACKLOG_JOBS):
        await repo.enqueue(_job(n, BACKLOG_GUILDS), now=T0 - 1, limits=LIMITS)


async def _measure(url: str, cycles: int) -> dict[str, float]:
    results: dict[str, float] = {}
    repo = open_repository(url)
    await repo.connect()
    try:
        for workers in (1, 4):
            results[f"empty_{workers}w"] = await _cycles(repo, workers, cycles)
        started = time.perf_counter()
        await _fill_backlog(repo)
        results["enqueue_per_s"] = BACKLOG_JOBS / (time.perf_counter() - started)
        for workers in (1, 4):
            results[f"backlog_{workers}w"] = await _cycles(repo, workers, cycles)
    finally:
        await repo.close()
    return results


def _report(backend: str, results: dict[str, float]) -> None:
    print(f"{backend}: enqueue alone {results['enqueue_per_s']:,.0f} jobs/s")
    for queue in ("empty", "backlog"):
        label = "empty queue" if queue == "empty" else f"{BACKLOG_JOBS:,} queued jobs"
        for workers in (1, 4):
            rate = results[f"{queue}_{workers}w"]
            print(f"{backend}: {workers} worker(s), {label}: {rate:,.0f} full cycles/s")


async def _postgres(cycles: int) -> dict[str, float] | str:
    admin = os.environ.get(
        "KONTEXT_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
    )
    try:
        conn = await asyncpg.connect(admin, timeout=5)
    except (OSError, TimeoutError, asyncpg.PostgresError) as err:
        return f"skipped: PostgreSQL at {admin} is unreachable ({err})"
    name = f"kontext_bench_{secrets.token_hex(6)}"
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
        url = urlunsplit(urlsplit(admin)._replace(path=f"/{name}"))
        return await _measure(url, cycles)
    finally:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.close()


async def main(cycles: int) -> None:
    summary: dict[str, object] = {"cycles_per_run": cycles}
    with tempfile.TemporaryDirectory() as folder:
        sqlite = await _measure(f"sqlite:///{Path(folder) / 'bench.db'}", cycles)
    _report("sqlite", sqlite)
    summary["sqlite"] = sqlite
    postgres = await _postgres(cycles)
    if isinstance(postgres, str):
        print(f"postgres: {postgres}")
    else:
        _report("postgres", postgres)
    summary["postgres"] = postgres
    print(json.dumps(summary, sort_keys=True))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=2_000, help="cycles per measurement")
    asyncio.run(main(parser.parse_args().cycles))
