"""An engine process for the kill -9 test: ``python engine_proc.py DB FAKE_DB LEASE [SUBMIT]``.

Runs a JobEngine on the SQLite database ``DB`` with a provider whose every submission, poll
and delivery is written to its own SQLite file ``FAKE_DB`` before it answers, so the test can
see what happened even after this process is killed. With ``SUBMIT`` it first submits that
many jobs. It exits 0 once nothing is queued or in flight.
"""

from __future__ import annotations

import asyncio
import sqlite3
import sys
import time
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.fakeprovider import capabilities, png_bytes
from bot.jobs import EditRequest, EngineConfig, JobEngine, ProviderLimits, ResultImage
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

JOB_SECONDS = 1.5  # how long the provider takes per job (wall time)

SCHEMA = """
CREATE TABLE IF NOT EXISTS submissions (id INTEGER PRIMARY KEY, prompt TEXT, handle TEXT,
    at REAL);
CREATE TABLE IF NOT EXISTS polls (handle TEXT, at REAL);
CREATE TABLE IF NOT EXISTS posted (job_id INTEGER PRIMARY KEY, prompt TEXT, at REAL);
CREATE TABLE IF NOT EXISTS delivery_attempts (job_id INTEGER, at REAL);
"""


def open_log(path: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, timeout=10)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.executescript(SCHEMA)
    return conn


class DurableProvider:
    """Asynchronous provider: a job finishes JOB_SECONDS after its submission."""

    def __init__(self, log: sqlite3.Connection) -> None:
        self._log = log
        self._caps = capabilities(
            "durable", asynchronous=True, concurrency=20, min_poll_interval=0.1
        )

    @property
    def capabilities(self) -> Capabilities:
        return self._caps

    def check(self, request: GenerationRequest) -> None:
        return None

    async def submit(self, request: GenerationRequest) -> Submitted | Finished:
        cursor = self._log.execute(
            "INSERT INTO submissions (prompt, handle, at) VALUES (?, '', ?)",
            (request.prompt, time.time()),
        )
        handle = f"h{cursor.lastrowid}"
        self._log.execute(
            "UPDATE submissions SET handle = ? WHERE id = ?", (handle, cursor.lastrowid)
        )
        return Submitted(handle=handle)

    async def poll(self, handle: str) -> Pending | Finished:
        self._log.execute("INSERT INTO polls (handle, at) VALUES (?, ?)", (handle, time.time()))
        (submitted_at,) = self._log.execute(
            "SELECT at FROM submissions WHERE handle = ?", (handle,)
        ).fetchone()
        if time.time() - submitted_at < JOB_SECONDS:
            return Pending(status="processing")
        return Finished(outputs=(OutputImage(data=png_bytes()),), credits=1.0, handle=handle)

    async def cancel(self, handle: str) -> bool:
        return False

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


async def main(db: str, fake_db: str, lease: float, submit: int) -> None:
    log = open_log(fake_db)
    repo = open_repository(f"sqlite:///{db}")
    await repo.connect()
    config = EngineConfig(
        default_provider="durable",
        lease_seconds=lease,
        safety_poll_seconds=0.5,
        poll_max_interval=0.2,
        providers={"durable": ProviderLimits(concurrency=20)},
    )
    engine = JobEngine(
        repo, {"durable": DurableProvider(log)}, DurableDeliverer(log), config=config
    )
    for guild in range(1, 11):
        await repo.save_guild_settings(
            GuildSettings(guild_id=guild, max_guild_running=10, max_user_active=10), now=time.time()
        )
    for i in range(submit):
        await engine.submit(
            EditRequest(
                guild_id=1 + i % 10,
                channel_id=1,
                user_id=i,
                kind=JobKind.IMAGINE,
                prompt=f"job {i}",
            )
        )
    await engine.start()
    await engine.run_until_idle()
    await engine.stop()
    await repo.close()


if __name__ == "__main__":
    asyncio.run(
        main(
            sys.argv[1],
            sys.argv[2],
            float(sys.argv[3]),
            int(sys.argv[4]) if len(sys.argv) > 4 else 0,
        )
    )
