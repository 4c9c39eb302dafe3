"""An engine process for the kill -9 tests: ``python engine_proc.py DB FAKE_DB LEASE [SUBMIT]``.

Runs a JobEngine on ``DB`` (a SQLite file, or a ``postgresql://`` URL shared by several such
processes) with a provider whose every submission, poll, cancel and delivery is written to
its own SQLite file ``FAKE_DB`` before it answers, so the test can see what happened even
after this process is killed. Each submission records until when the provider is busy with
it, which is what the tests count the account's concurrency from. With ``SUBMIT`` it first
submits that many jobs. It exits 0 once nothing is queued or in flight anywhere.

Options: ``--concurrency`` (the provider account's), ``--job-seconds`` (how long the provider
works on a job; prompts starting with ``forever`` never finish), ``--safety-poll``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sqlite3
import sys
import time
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.fakeprovider import capabilities, png_bytes
from bot.jobs import EditRequest, EngineConfig, JobEngine, ProviderLimits, ResultImage
from bot.jobs.events import JobEvent
from bot.models import GuildSettings, Job, JobKind
from bot.providers.base import (
    Capabilities,
    Finished,
    GenerationRequest,
    OutputImage,
    Pending,
    Submitted,
)
from storage import open_repository

JOB_SECONDS = 1.5  # how long the provider takes per job (wall time), unless told otherwise
FOREVER = "forever"  # prompts starting with this never finish

SCHEMA = """
CREATE TABLE IF NOT EXISTS submissions (id INTEGER PRIMARY KEY, prompt TEXT, handle TEXT,
    at REAL, busy_until REAL);
CREATE TABLE IF NOT EXISTS polls (handle TEXT, at REAL, pid INTEGER);
CREATE TABLE IF NOT EXISTS cancels (handle TEXT, at REAL);
CREATE TABLE IF NOT EXISTS posted (job_id INTEGER PRIMARY KEY, prompt TEXT, at REAL);
CREATE TABLE IF NOT EXISTS delivery_attempts (job_id INTEGER, at REAL);
"""


def open_log(path: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, timeout=10)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.executescript(SCHEMA)
    return conn


class DurableProvider:
    """Asynchronous provider: a job finishes ``job_seconds`` after its submission."""

    def __init__(self, log: sqlite3.Connection, job_seconds: float = JOB_SECONDS) -> None:
        self._log = log
        self._job_seconds = job_seconds
        self._caps = capabilities(
            "durable", asynchronous=True, concurrency=20, min_poll_interval=0.1
        )

    @property
    def capabilities(self) -> Capabilities:
        return self._caps

    def check(self, request: GenerationRequest) -> None:
        return None

    async def submit(self, request: GenerationRequest) -> Submitted | Finished:
        now = time.time()
        forever = request.prompt.startswith(FOREVER)
        cursor = self._log.execute(
            "INSERT INTO submissions (prompt, handle, at, busy_until) VALUES (?, '', ?, ?)",
            (request.prompt, now, None if forever else now + self._job_seconds),
        )
        handle = f"h{cursor.lastrowid}"
        self._log.execute(
            "UPDATE submissions SET handle = ? WHERE id = ?", (handle, cursor.lastrowid)
        )
        return Submitted(handle=handle)

    async def poll(self, handle: str) -> Pending | Finished:
        self._log.execute(
            "INSERT INTO polls (handle, at, pid) VALUES (?, ?, ?)",
            (handle, time.time(), os.getpid()),
        )
        (busy_until,) = self._log.execute(
            "SELECT busy_until FROM submissions WHERE handle = ?", (handle,)
        ).fetchone()
        if busy_until is None or time.time() < busy_until:
            return Pending(status="processing")
        return Finished(outputs=(OutputImage(data=png_bytes()),), credits=1.0, handle=handle)

    async def cancel(self, handle: str) -> bool:
        self._log.execute("INSERT INTO cancels (handle, at) VALUES (?, ?)", (handle, time.time()))
        return True

    async def aclose(self) -> None:
        return None


class DurableDeliverer:
    """Posts at most once per job, like a Discord message nonce; records every attempt."""

    def __init__(self, log: sqlite3.Connection) -> None:
        self._log = log

    async def deliver(self, job: Job, images: Sequence[ResultImage]) -> None:
        now = time.time()
        self._log.execute("INSERT INTO delivery_attempts (job_id, at) VALUES (?, ?)", (job.id, now))
        self._log.execute(
            "INSERT INTO posted (job_id, prompt, at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
            (job.id, job.prompt, now),
        )


async def report(event: JobEvent) -> None:
    """One line per event on stdout, so the test can wait on progress without polling (and
    a first ``worker <id>`` line naming the engine's lease owner)."""
    sys.stdout.write(f"{event.kind} {event.job.id}\n")
    sys.stdout.flush()


async def main(args: argparse.Namespace) -> None:
    log = open_log(args.fake_db)
    url = args.db if args.db.startswith("postgresql://") else f"sqlite:///{args.db}"
    repo = open_repository(url)
    await repo.connect()
    config = EngineConfig(
        default_provider="durable",
        lease_seconds=args.lease,
        safety_poll_seconds=args.safety_poll,
        poll_max_interval=0.2,
        providers={"durable": ProviderLimits(concurrency=args.concurrency)},
    )
    engine = JobEngine(
        repo,
        {"durable": DurableProvider(log, args.job_seconds)},
        DurableDeliverer(log),
        config=config,
        sinks=(report,),
    )
    for guild in range(1, 11):
        await repo.save_guild_settings(
            GuildSettings(guild_id=guild, max_guild_running=10, max_user_active=10), now=time.time()
        )
    for i in range(args.submit):
        await engine.submit(
            EditRequest(
                guild_id=1 + i % 10,
                channel_id=1,
                user_id=i,
                kind=JobKind.IMAGINE,
                prompt=f"job {i}",
            )
        )
    sys.stdout.write(f"worker {engine.worker_id}\n")
    sys.stdout.flush()
    await engine.start()
    await engine.run_until_idle()
    await engine.stop()
    await repo.close()


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("db")
    parser.add_argument("fake_db")
    parser.add_argument("lease", type=float)
    parser.add_argument("submit", type=int, nargs="?", default=0)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--job-seconds", type=float, default=JOB_SECONDS)
    parser.add_argument("--safety-poll", type=float, default=0.5)
    return parser.parse_args(argv)


if __name__ == "__main__":
    asyncio.run(main(parse_args(sys.argv[1:])))
