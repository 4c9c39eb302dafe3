"""Gateways and workers as real ``kontext-bot`` processes on PostgreSQL, against the fake
Discord and a provider fake that the test holds and releases request by request.

Two gateways run shards 0 and 1 of 2; three workers never open a gateway. Members of four
servers (two on each shard) run /edit. While the account's two slots are busy, one worker is
killed with SIGKILL (its job is run again by another once its lease lapses) and the gateway of
shard 1 is killed too (the jobs it acknowledged are still delivered, over REST, by the
workers); a new gateway takes shard 1 and serves the next round. Finally a Cancel pressed on a
gateway stops a job a worker holds at the provider. Checked: every job's result is posted once,
in its own thread; every interaction is acknowledged once; the provider never serves more
requests at once than the account allows.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from bot.models import Job, JobStatus
from storage import open_repository
from storage.sql import Repository
from tests import pg
from tests.discord_fake import FakeDiscord, InteractionHandle, png_file
from tests.discord_fake.models import Guild
from tests.fakes import AimlApiFake, Outcome, docs_dir, env_for

REPO_ROOT = Path(__file__).resolve().parents[2]
ACCOUNT = 2  # AIMLAPI_CONCURRENCY: provider slots shared by every worker
LEASE = 3.0  # seconds until a dead worker's job may be taken by another
T_LIMIT = 120.0  # the whole scenario, processes included
CALLBACK = "/interactions/{interaction_id}/{interaction_token}/callback"


class HeldProvider(AimlApiFake):
    """Holds each generation until the test releases its prompt; counts requests in flight."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.live: Counter[str] = Counter()
        self.peak = 0
        self.served: Counter[str] = Counter()
        self.gates: dict[str, asyncio.Event] = {}
        self.open_all = False

    def gate(self, prompt: str) -> asyncio.Event:
        event = self.gates.setdefault(prompt, asyncio.Event())
        if self.open_all:
            event.set()
        return event

    def release(self, prompt: str | None = None) -> None:
        if prompt is None:
            self.open_all = True
            for event in self.gates.values():
                event.set()
        else:
            self.gate(prompt).set()

    async def common(self, request: web.Request, outcome: Outcome) -> web.StreamResponse | Outcome:
        prompt = str(self.bodies("submit")[-1].get("prompt"))  # recorded just before this call
        self.live[prompt] += 1
        self.peak = max(self.peak, sum(self.live.values()))
        try:
            await self.gate(prompt).wait()
        finally:
            self.live[prompt] -= 1
            self.live += Counter()  # drop zero counts
        self.served[prompt] += 1
        return await super().common(request, outcome)


class Proc:
    def __init__(self, name: str, proc: asyncio.subprocess.Process, fake: FakeDiscord) -> None:
        self.name = name
        self.proc = proc
        self.lines: list[str] = []
        self.worker_id = ""
        self._pump = asyncio.create_task(self._read(fake))

    async def _read(self, fake: FakeDiscord) -> None:
        assert self.proc.stderr is not None
        async for raw in self.proc.stderr:
            line = raw.decode(errors="replace").rstrip()
            self.lines.append(line)
            if "worker " in line and " is taking jobs" in line:
                self.worker_id = line.split("worker ", 1)[1].split()[0]
            fake.notify()
        fake.notify()

    def said(self, text: str) -> bool:
        return any(text in line for line in self.lines)

    async def kill(self) -> None:
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGKILL)
        await self.proc.wait()
        self._pump.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._pump


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    yield from pg.session_database()


@pytest.fixture
async def held() -> AsyncIterator[HeldProvider]:
    async with HeldProvider(docs=docs_dir()) as fake:
        yield fake
        fake.release()


class Cluster:
    def __init__(self, fake: FakeDiscord, provider: HeldProvider, url: str) -> None:
        self.fake = fake
        self.provider = provider
        self.url = url
        self.procs: list[Proc] = []

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("KONTEXT_", "DISCORD_"))}
        env.update(env_for(self.provider))
        env.update(
            PYTHONPATH=str(REPO_ROOT),
            DISCORD_TOKEN=self.fake.token,
            DISCORD_API_BASE=self.fake.api_base,
            DISCORD_GATEWAY_URL=self.fake.gateway_url,
            KONTEXT_DATABASE_URL=self.url,
            KONTEXT_LOG_LEVEL="INFO",
            KONTEXT_JOB_LEASE_SECONDS=f"{LEASE:g}",
            AIMLAPI_CONCURRENCY=str(ACCOUNT),
            **extra,
        )
        return env

    async def spawn(self, name: str, role: str, **extra: str) -> Proc:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot",
            role,
            env=self.env(**extra),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        started = Proc(name, proc, self.fake)
        self.procs.append(started)
        return started

    async def gateway(self, shard: int) -> Proc:
        proc = await self.spawn(
            f"gateway-{shard}", "gateway", KONTEXT_SHARD_COUNT="2", KONTEXT_SHARD_IDS=str(shard)
        )
        await self.fake.wait_for(
            lambda: (
                proc.said(f"shard {shard} ready")
                and (proc.said("registered") or proc.said("not synced"))
            ),
            timeout=30,
            what=f"gateway of shard {shard} ready: {proc.lines[-5:]}",
        )
        return proc

    async def worker(self, index: int) -> Proc:
        proc = await self.spawn(f"worker-{index}", "worker")
        await self.fake.wait_for(
            lambda: proc.worker_id, timeout=30, what=f"worker {index}: {proc.lines[-5:]}"
        )
        return proc

    async def close(self) -> None:
        for proc in self.procs:  # only the processes this test started
            await proc.kill()


async def _edit(fake: FakeDiscord, guild: Guild, prompt: str) -> tuple[InteractionHandle, int]:
    handle = await fake.member("alice").run_command(
        "edit", in_channel=fake.channel("general", guild), prompt=prompt, image=png_file()
    )
    assert await handle.acknowledged(timeout=10) == 5
    answer = await handle.response(timeout=10)
    assert "Queued as job" in answer.content, answer.content
    return handle, int(answer.content.split("job ")[1].split(".")[0])


async def _job(repo: Repository, job_id: int) -> Job:
    job = await repo.get_job(job_id)
    assert job is not None
    return job


@pytest.mark.timeout(T_LIMIT + 30)
async def test_gateways_and_workers_split_the_work(
    fake_discord: FakeDiscord, held: HeldProvider, pg_url: str
) -> None:
    await pg.reset_database(pg_url)
    fake = fake_discord
    fake.identify_window = 0.2
    fake.max_concurrency = 2
    alice = fake.user("alice")
    guilds = [
        fake.add_guild(f"Server {i}", humans=(), members=[alice], shard=(i % 2, 2))
        for i in range(4)
    ]
    repo = open_repository(pg_url)
    await repo.connect()
    cluster = Cluster(fake, held, pg_url)
    try:
        async with asyncio.timeout(T_LIMIT):
            await _scenario(cluster, repo, guilds)
    finally:
        held.release()
        await cluster.close()
        for proc in cluster.procs:  # shown by pytest when the test fails
            print(f"--- {proc.name}", *proc.lines[-40:], sep="\n")
        await repo.close()


async def _scenario(cluster: Cluster, repo: Repository, guilds: list[Guild]) -> None:
    fake, provider = cluster.fake, cluster.provider
    gateways = [await cluster.gateway(0), await cluster.gateway(1)]
    workers = [await cluster.worker(i) for i in range(3)]
    handles: list[InteractionHandle] = []
    jobs: list[int] = []

    # Round one: a job from each server; both slots fill and the rest wait in the queue.
    for i, guild in enumerate(guilds):
        handle, job_id = await _edit(fake, guild, f"round one {i}")
        handles.append(handle)
        jobs.append(job_id)
    await fake.wait_for(lambda: sum(provider.live.values()) == ACCOUNT, timeout=20)
    busy = [p for p, n in provider.live.items() if n]
    running = [await _job(repo, j) for j in jobs]
    held_by = {j.prompt: j.lease_owner for j in running if j.prompt in busy}
    [victim] = [w for w in workers if w.worker_id == held_by[busy[0]]]
    await victim.kill()
    provider.release(busy[0])  # the dead worker's request ends at the provider too
    await gateways[1].kill()  # shard 1 goes while its acknowledged jobs are still queued
    provider.release()
    for job_id in jobs:
        await _wait_delivered(fake, repo, job_id)

    # Round two: a new gateway takes shard 1; both shards serve again.
    provider.open_all = False
    gateways.append(await cluster.gateway(1))
    provider.release()
    for i, guild in enumerate(guilds):
        handle, job_id = await _edit(fake, guild, f"round two {i}")
        handles.append(handle)
        jobs.append(job_id)
    for job_id in jobs[-4:]:
        await _wait_delivered(fake, repo, job_id)

    # A Cancel pressed on the gateway of shard 1 stops the job a worker holds.
    provider.open_all = False
    handle, job_id = await _edit(fake, guilds[1], "cancel me")
    handles.append(handle)
    await fake.wait_for(lambda: provider.live["cancel me"] == 1, timeout=20)
    job = await _job(repo, job_id)
    assert job.status_message_id is not None
    status = fake.messages[job.status_message_id]
    click = await fake.member("alice").click(status, "Cancel")
    assert await click.acknowledged(timeout=10)
    handles.append(click)
    await fake.wait_for(
        lambda: "Cancelled" in fake.messages[status.id].content, timeout=20, what="cancelled"
    )
    assert (await _job(repo, job_id)).status is JobStatus.CANCELLED
    assert provider.served["cancel me"] == 0  # the provider never answered it

    # Each result once, in its job's thread; each interaction answered once; the account held.
    for job_id in jobs:
        job = await _job(repo, job_id)
        posted = [
            m
            for m in fake.messages.values()
            if m.author_id == fake.bot_user.id and f"kx:reroll:{job_id}" in str(m.components)
        ]
        assert len(posted) == 1, (job_id, len(posted))
        assert posted[0].channel_id == (job.thread_id or job.channel_id)
    callbacks = Counter(r.path for r in fake.requests_to("POST", CALLBACK))
    assert callbacks and max(callbacks.values()) == 1
    assert len(callbacks) == len(handles)
    assert provider.peak == ACCOUNT
    assert not any(p.said("Traceback") for p in cluster.procs)


async def _wait_delivered(fake: FakeDiscord, repo: Repository, job_id: int) -> None:
    job = await _job(repo, job_id)
    place = job.thread_id or job.channel_id
    await fake.wait_for_message(
        place, lambda m: f"kx:reroll:{job_id}" in str(m.components), timeout=30
    )
