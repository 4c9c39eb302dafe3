"""Local fakes of the image providers, for every layer's tests.

Each fake is an aiohttp server on 127.0.0.1 that follows the provider's published docs,
validates every request body against them, and answers from scripted :class:`Outcome`
queues. See :mod:`tests.fakes.server` for the scripting API; :func:`settings_for` and
:func:`env_for` point the application at a running fake.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from bot.clock import Clock
from bot.config import Settings
from tests.fakes.aimlapi import AimlApiFake
from tests.fakes.bfl import BflFake
from tests.fakes.fal import FalFake
from tests.fakes.modelslab import ModelsLabFake
from tests.fakes.replicate import ReplicateFake
from tests.fakes.schemas import docs_dir, require_docs
from tests.fakes.server import FakeProvider, Kind, Outcome, Recorded, render
from tests.fakes.wavespeed import WaveSpeedFake

FAKES: dict[str, type[FakeProvider]] = {
    "aimlapi": AimlApiFake,
    "modelslab": ModelsLabFake,
    "wavespeed": WaveSpeedFake,
    "bfl": BflFake,
    "fal": FalFake,
    "replicate": ReplicateFake,
}


@asynccontextmanager
async def running(
    name: str, *, docs: Path | None = None, clock: Clock | None = None, check: bool = True
) -> AsyncIterator[FakeProvider]:
    """Start the fake of provider ``name``; on exit, fail if any request broke its schema.

    ``docs`` defaults to :func:`require_docs` (skips, or fails in CI, without the docs);
    ``clock`` stamps each recorded request with ``clock.monotonic()``.
    """
    async with FAKES[name](docs=docs or require_docs(), clock=clock) as fake:
        yield fake
    if check:
        fake.assert_clean()


def settings_for(fake: FakeProvider, **overrides: Any) -> Settings:
    """Settings that use ``fake`` as the provider (no environment, no ``.env``)."""
    values: dict[str, Any] = {
        "provider": fake.name,
        f"{fake.name}_api_key": fake.api_key,
        f"{fake.name}_base_url": fake.base_url,
        "media_hosts": (fake.host,),
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)


def env_for(fake: FakeProvider) -> dict[str, str]:
    """Environment variables that point a ``kontext-bot`` process at ``fake``."""
    upper = fake.name.upper()
    return {
        "KONTEXT_PROVIDER": fake.name,
        fake.key_env or f"{upper}_API_KEY": fake.api_key,
        f"{upper}_BASE_URL": fake.base_url,
        "KONTEXT_MEDIA_HOSTS": fake.host,
    }


__all__ = [
    "FAKES",
    "AimlApiFake",
    "BflFake",
    "FakeProvider",
    "FalFake",
    "Kind",
    "ModelsLabFake",
    "Outcome",
    "Recorded",
    "ReplicateFake",
    "WaveSpeedFake",
    "docs_dir",
    "env_for",
    "render",
    "require_docs",
    "running",
    "settings_for",
]
