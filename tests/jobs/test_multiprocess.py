"""Three engine processes on one PostgreSQL database, one killed with SIGKILL mid-job.

The test process is the front end: it queues jobs from four guilds (each guild's jobs one
after another, so a FIFO would run guild 1 first) plus one that never finishes, and cancels
that one at the end. The provider fake in engine_proc.py records, in a file every process
writes to, when each submission keeps the provider busy until, and every poll, cancel and
post. Checked: every job ends exactly once and is posted once; the provider never works on
more jobs at once than the account allows (and does reach it); jobs the dead process had
submitted are polled by another, never submitted again; guilds take turns across processes;
the cancel reaches the process that holds the job, which tells the provider.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sqlite3
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from bot.jobs import EditRequest, EngineConfig, JobEngine, ProviderLimits, ResultImage
from bot.models import GuildSettings, Job, JobKind, JobStatus
from storage import open_repository
from storage.sql import Repository
from tests import pg

from .engine_proc import FOREVER, DurableProvider, open_log

PROC = Path(__file__).with_name("engine_proc.py")
ACCOUNT = 4  # the provider account's concurrency, shared by all processes
GUILDS = 4
PER_GUILD = 9
JOB_SECONDS = 1.0
LEASE = 2.5  # > 1.5 x JOB_SECONDS: a dead process's orphaned submission ends before reuse
T_LIMIT = 150.0  # the whole test, processes included


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    yield from pg.session_database()


@dataclass
class EngineProcess:
    proc: asyncio.subprocess.Process
    worker_id: str = ""
    progress: set[int] = field(default_factory=set)
    done: set[int] = field(default_factory=set)


class Watch:
    """What the engine processes report on stdout (one ``<event> <job id>`` line each)."""

    def __init__(self) -> None:
        self.changed = asyncio.Event()
        self.procs: list[EngineProcess] = []

    async def pump(self, engine: EngineProcess) -> None:
        assert engine.proc.stdout is not None
        async for line in engine.proc.stdout:
            kind, value = line.decode().split()
            if kind == "worker":
                engine.worker_id = value
            else:
                {"progress": engine.progress, "done": engine.done}.get(kind, set()).add(int(value))
            self.changed.set()
        self.changed.set()

    async def until(self, predicate: Callable[[], object]) -> None:
        while not predicate():
            self.changed.clear()
            await self.changed.wait()

    def done(self) -> set[int]:
        return set().union(*(p.done for p in self.procs))


class NoDelivery:
    async def deliver(self, job: Job, images: list[ResultImage]) -> None:
        raise AssertionError("the front end delivers nothing")


def _rows(path: Path, sql: str) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(path, timeout=10)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def _max_overlap(intervals: list[tuple[float, float]]) -> int:
    edges = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    busy = peak = 0
    for _, step in edges:  # at equal times an end (-1) sorts before a start
        busy += step
        peak = max(peak, busy)
    return peak


@pytest.mark.timeout(T_LIMIT + 30)
async def test_three_engine_processes_one_killed(pg_url: str, tmp_path: Path) -> None:
    await pg.reset_database(pg_url)
    fake_db = tmp_path / "provider.db"
    open_log(str(fake_db)).close()
    repo = open_repository(pg_url)
    await repo.connect()
    watch = Watch()
    pumps: list[asyncio.Task[None]] = []
    try:
        async with asyncio.timeout(T_LIMIT):
            await _run(repo, pg_url, fake_db, tmp_path, watch, pumps)
    finally:
        for engine in watch.procs:
            if engine.proc.returncode is None:
                engine.proc.kill()
                await engine.proc.wait()
        for pump in pumps:
            pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pump
        await repo.close()


async def _run(
    repo: Repository,
    url: str,
    fake_db: Path,
    tmp_path: Path,
    watch: Watch,
    pumps: list[asyncio.Task[None]],
) -> None:
    front = JobEngine(
        repo,
        {"durable": DurableProvider(open_log(str(fake_db)))},
        NoDelivery(),
        config=EngineConfig(
            default_provider="durable", providers={"durable": ProviderLimits(concurrency=ACCOUNT)}
        ),
    )
    prompts: dict[str, int] = {}  # prompt -> guild
    for guild in range(1, GUILDS + 1):
        await front.repo.save_guild_settings(
            GuildSettings(guild_id=guild, max_guild_running=10, max_user_active=PER_GUILD + 1),
            now=front.clock.now(),
        )
    forever = await front.submit(_request(1, 0, f"{FOREVER} g1"))
    for guild in range(1, GUILDS + 1):
        for index in range(PER_GUILD):
            prompt = f"g{guild} job {index}"
            prompts[prompt] = guild
            await front.submit(_request(guild, index, prompt))

    for number in range(3):
        log = (tmp_path / f"engine-{number}.log").open("ab")
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            str(PROC),
            url,
            str(fake_db),
            str(LEASE),
            "--concurrency",
            str(ACCOUNT),
            "--job-seconds",
            str(JOB_SECONDS),
            "--safety-poll",
            "60",  # notifications do the waking
            stdout=asyncio.subprocess.PIPE,
            stderr=log,
        )
        log.close()
        engine = EngineProcess(proc)
        watch.procs.append(engine)
        pumps.append(asyncio.create_task(watch.pump(engine)))

    # Kill a process while the provider works on a job it submitted, once some are done.
    await watch.until(lambda: len(watch.done()) >= ACCOUNT)
    killed: EngineProcess | None = None
    while killed is None:
        running = await front.repo.list_jobs(statuses=[JobStatus.RUNNING])
        fresh = time.time() - JOB_SECONDS / 2  # still running when the kill lands
        owners = {j.lease_owner for j in running if j.id != forever.id and j.started_at > fresh}
        killed = next((p for p in watch.procs if p.worker_id in owners), None)
        if killed is None:
            watch.changed.clear()
            await watch.changed.wait()
    killed.proc.send_signal(signal.SIGKILL)
    await killed.proc.wait()
    at_kill = {j.id: j for j in await front.repo.list_jobs(limit=1000)}
    survivors = [p for p in watch.procs if p is not killed]

    # Everything but the never-ending job gets done; then the front end cancels that one.
    # A job the killed process finished just before the kill may never have been reported
    # on its stdout: the database, read after the kill, says it is done.
    everything = set(at_kill) - {forever.id}
    done_at_kill = {j.id for j in at_kill.values() if j.status is JobStatus.DONE}
    await watch.until(lambda: everything <= watch.done() | done_at_kill)
    await front.cancel(forever.id, by_user_id=0)
    for engine in survivors:
        assert await engine.proc.wait() == 0, (tmp_path / "engine-0.log").read_text()[-2000:]
    assert killed.proc.returncode == -signal.SIGKILL

    # Every job ended exactly once, as it should.
    final = {j.id: j.status for j in await front.repo.list_jobs(limit=1000)}
    assert final.pop(forever.id) is JobStatus.CANCELLED
    assert set(final.values()) == {JobStatus.DONE}
    ends: Counter[int] = Counter()
    for job_id in final:
        ends[job_id] = sum(s.terminal for s, _ in await front.repo.job_history(job_id))
    assert set(ends.values()) == {1} and len(ends) == GUILDS * PER_GUILD

    # The account: never more jobs at the provider at once than it allows, and it was full.
    cancelled_at = _rows(fake_db, "SELECT MIN(at) FROM cancels")[0][0]
    assert isinstance(cancelled_at, float)
    intervals = [
        (float(at), float(until) if until is not None else cancelled_at)  # type: ignore[arg-type]
        for at, until in _rows(fake_db, "SELECT at, busy_until FROM submissions")
    ]
    assert _max_overlap(intervals) == ACCOUNT

    # The cancel crossed processes: the holder told the provider about the handle.
    forever_handle = (await front.repo.get_job(forever.id)).provider_handle  # type: ignore[union-attr]
    assert [h for (h,) in _rows(fake_db, "SELECT handle FROM cancels")] == [forever_handle]

    # Nothing the provider had accepted was submitted again; nothing was posted twice.
    submissions = Counter(str(p) for (p,) in _rows(fake_db, "SELECT prompt FROM submissions"))
    for job in at_kill.values():
        if job.provider_handle:
            assert submissions[job.prompt] == 1, f"job {job.id} was submitted twice"
        elif submissions[job.prompt] > 1:
            assert job.status is JobStatus.SUBMITTING  # died between submit and saving
    posted = Counter(int(j) for (j,) in _rows(fake_db, "SELECT job_id FROM posted"))  # type: ignore[call-overload]
    assert set(posted) == set(final) and set(posted.values()) == {1}
    # The dead process's jobs at the provider were polled again by another process.
    held_by_dead = [
        str(j.provider_handle)
        for j in at_kill.values()
        if j.status is JobStatus.RUNNING and j.lease_owner == killed.worker_id
    ]
    assert held_by_dead
    polled_by_others = {
        str(h)
        for (h,) in _rows(
            fake_db, f"SELECT DISTINCT handle FROM polls WHERE pid <> {killed.proc.pid}"
        )
    }
    assert set(held_by_dead) <= polled_by_others

    # Guilds took turns across the processes: the first submissions cover every guild.
    first = [str(p) for (p,) in _rows(fake_db, "SELECT prompt FROM submissions ORDER BY at")]
    first_guilds = {prompts.get(p, 1) for p in first[:ACCOUNT]}
    assert first_guilds == set(range(1, GUILDS + 1)), first[:ACCOUNT]


def _request(guild: int, user: int, prompt: str) -> EditRequest:
    return EditRequest(
        guild_id=guild, channel_id=guild, user_id=user, kind=JobKind.IMAGINE, prompt=prompt
    )
