"""Fixtures for provider tests: a stepping manual clock, the three fakes, HTTP clients."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator, Awaitable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from PIL import Image

from bot.clock import ManualClock
from bot.providers import build_provider
from bot.providers.base import Provider, ReferenceImage
from bot.providers.http import HttpRetryPolicy
from tests.fakes import FAKES, FakeProvider, require_docs, running, settings_for

T = TypeVar("T")

#: No jitter, so backoff delays are exact.
TEST_POLICY = HttpRetryPolicy(jitter=False, submit_timeout=10.0, poll_timeout=10.0)
#: For the tests where the fake stalls until released: httpx's read timeout is wall time.
STALL_POLICY = HttpRetryPolicy(jitter=False, submit_timeout=0.3, poll_timeout=0.3)


class SteppingClock(ManualClock):
    """A manual clock that records every sleep and can run a coroutine to completion,
    jumping time forward whenever the coroutine is parked on the clock."""

    def __init__(self) -> None:
        super().__init__()
        self.sleeps: list[float] = []
        self._wakes: list[float] = []

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        if seconds > 0:
            self._wakes.append(self.now() + seconds)
        await super().sleep(seconds)

    async def run(self, awaitable: Awaitable[T]) -> T:
        task = asyncio.ensure_future(awaitable)
        while not task.done():
            await asyncio.sleep(0)
            if self.sleepers and not task.done():
                pending = [w for w in self._wakes if w > self.now()]
                self.set(min(pending) if pending else self.now())
        return task.result()


@pytest.fixture
def docs() -> Path:
    return require_docs()


@pytest.fixture
def clock() -> SteppingClock:
    return SteppingClock()


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as http:
        yield http


async def _fake(name: str, docs: Path, clock: ManualClock) -> AsyncIterator[FakeProvider]:
    async with running(name, docs=docs, clock=clock) as fake:
        yield fake


@pytest.fixture
async def aiml(docs: Path, clock: SteppingClock) -> AsyncIterator[FakeProvider]:
    async for fake in _fake("aimlapi", docs, clock):
        yield fake


@pytest.fixture
async def modelslab(docs: Path, clock: SteppingClock) -> AsyncIterator[FakeProvider]:
    async for fake in _fake("modelslab", docs, clock):
        yield fake


@pytest.fixture
async def wavespeed(docs: Path, clock: SteppingClock) -> AsyncIterator[FakeProvider]:
    async for fake in _fake("wavespeed", docs, clock):
        yield fake


@pytest.fixture
async def bfl(docs: Path, clock: SteppingClock) -> AsyncIterator[FakeProvider]:
    async for fake in _fake("bfl", docs, clock):
        yield fake


@pytest.fixture
async def fal(docs: Path, clock: SteppingClock) -> AsyncIterator[FakeProvider]:
    async for fake in _fake("fal", docs, clock):
        yield fake


@pytest.fixture
async def replicate(docs: Path, clock: SteppingClock) -> AsyncIterator[FakeProvider]:
    async for fake in _fake("replicate", docs, clock):
        yield fake


@pytest.fixture(params=sorted(FAKES))
async def any_fake(
    request: pytest.FixtureRequest, docs: Path, clock: SteppingClock
) -> AsyncIterator[FakeProvider]:
    async for fake in _fake(request.param, docs, clock):
        yield fake


def provider_for(
    fake: FakeProvider,
    client: httpx.AsyncClient,
    clock: ManualClock,
    *,
    policy: HttpRetryPolicy = TEST_POLICY,
    **settings: Any,
) -> Provider:
    return build_provider(fake.name, settings_for(fake, **settings), client, clock, policy=policy)


def png(width: int, height: int, colour: tuple[int, int, int] = (90, 120, 150)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(out, format="PNG")
    return out.getvalue()


def reference(width: int = 64, height: int = 64, url: str | None = None) -> ReferenceImage:
    """A real PNG reference of the given shape (small bytes, declared size)."""
    return ReferenceImage(
        data=png(width, height), mime="image/png", width=width, height=height, url=url
    )


def run(clock: SteppingClock, coro: Coroutine[Any, Any, T]) -> Awaitable[T]:
    return clock.run(coro)
