"""Engine fixtures: a real SQLite repository, a ManualClock and scriptable fake providers."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import random
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from bench.fakeprovider import FakeProvider, capabilities, png_bytes
from bot.clock import ManualClock
from bot.jobs import (
    EditRequest,
    EngineConfig,
    JobEngine,
    JobEvent,
    ReferenceInput,
    ResultImage,
)
from bot.models import Job, JobKind, JobStatus, ReferenceSource
from storage import open_repository
from storage.sql import Repository

T0 = 1_800_000_000.0  # 2027-01-15 08:00 UTC


class RecordingDeliverer:
    """Idempotent per job, like the Discord deliverer with its message nonce."""

    def __init__(self) -> None:
        self.delivered: dict[int, list[ResultImage]] = {}
        self.attempts: list[int] = []
        self.fail_next = 0

    async def deliver(self, job: Job, images: Sequence[ResultImage]) -> None:
        self.attempts.append(job.id)
        if self.fail_next:
            self.fail_next -= 1
            raise RuntimeError("discord is down")
        self.delivered.setdefault(job.id, list(images))


@dataclass
class Harness:
    repo: Repository
    clock: ManualClock
    provider: FakeProvider
    deliverer: RecordingDeliverer
    events: list[JobEvent]
    providers: dict[str, FakeProvider]
    engines: list[JobEngine] = field(default_factory=list)

    def engine(self, config: EngineConfig | None = None, **kwargs: object) -> JobEngine:
        engine = JobEngine(
            self.repo,
            self.providers,
            self.deliverer,
            clock=self.clock,
            config=config or EngineConfig(default_provider="fake"),
            sinks=[self.sink],
            rng=random.Random(7),
            **kwargs,  # type: ignore[arg-type]
        )
        self.engines.append(engine)
        return engine

    async def sink(self, event: JobEvent) -> None:
        self.events.append(event)

    def kinds(self, job_id: int) -> list[str]:
        return [e.kind for e in self.events if e.job.id == job_id]

    def of(self, job_id: int, kind: str) -> list[JobEvent]:
        return [e for e in self.events if e.job.id == job_id and e.kind == kind]


def reference(color: tuple[int, int, int] = (10, 200, 30)) -> ReferenceInput:
    data = png_bytes(16, 12, color)
    return ReferenceInput(
        data=data,
        mime="image/png",
        width=16,
        height=12,
        content_hash=hashlib.sha256(data).hexdigest(),
        source=ReferenceSource.ATTACHMENT,
        url="https://cdn.example/ref.png",
    )


def edit(
    prompt: str = "make it blue",
    *,
    guild: int = 1,
    user: int = 100,
    images: int = 1,
    provider: str | None = None,
) -> EditRequest:
    return EditRequest(
        guild_id=guild,
        channel_id=10,
        user_id=user,
        kind=JobKind.EDIT if images else JobKind.IMAGINE,
        prompt=prompt,
        provider=provider,
        images=tuple(reference() for _ in range(images)),
    )


async def until_running(harness: Harness, job_id: int) -> None:
    """Wait (on the event loop, never on time) until the job has a saved provider handle."""
    seen = asyncio.Event()

    async def watch(event: JobEvent) -> None:
        if event.job.id == job_id and event.kind == "progress":
            seen.set()

    for engine in harness.engines:
        engine.events.add(watch)
    job = await harness.repo.get_job(job_id)
    if job is None or job.status is not JobStatus.RUNNING:
        await seen.wait()
    for engine in harness.engines:
        engine.events.remove(watch)


@pytest.fixture
async def repo(tmp_path: Path) -> AsyncIterator[Repository]:
    repository = open_repository(f"sqlite:///{tmp_path / 'kontext.db'}")
    await repository.connect()
    try:
        yield repository
    finally:
        await repository.close()


@pytest.fixture
async def harness(repo: Repository) -> AsyncIterator[Harness]:
    async with harness_over(repo) as h:
        yield h


@contextlib.asynccontextmanager
async def harness_over(repo: Repository) -> AsyncIterator[Harness]:
    """A harness (manual clock, scriptable provider) over ``repo``; stops its engines."""
    clock = ManualClock(T0)
    provider = FakeProvider(capabilities("fake", concurrency=2), clock=clock)
    h = Harness(
        repo=repo,
        clock=clock,
        provider=provider,
        deliverer=RecordingDeliverer(),
        events=[],
        providers={"fake": provider},
    )
    try:
        yield h
    finally:
        for engine in h.engines:
            await engine.stop()
