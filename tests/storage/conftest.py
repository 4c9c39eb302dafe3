"""Storage fixtures: every test that takes ``repo`` (or ``db_url``) runs on both backends."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from bot.models import JobKind, NewJob, NewReference
from storage import open_repository
from storage.sql import Repository
from tests import pg

T0 = 1_800_000_000.0  # a fixed "now"; tests move time by hand


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A throw-away PostgreSQL database for the session (skipped if unreachable, unless
    KONTEXT_REQUIRE_POSTGRES=1)."""
    yield from pg.session_database()


@pytest.fixture(params=["sqlite", "postgres"])
async def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database of each backend (the PostgreSQL one is emptied between tests)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'kontext.db'}"
    url: str = request.getfixturevalue("pg_database")
    await pg.reset_database(url)
    return url


@pytest.fixture
async def repo(db_url: str) -> AsyncIterator[Repository]:
    repository = open_repository(db_url)
    await repository.connect()
    try:
        yield repository
    finally:
        await repository.close()


def new_job(
    guild_id: int = 1,
    user_id: int = 10,
    *,
    provider: str = "aiml",
    prompt: str = "make it blue",
    parent_output_id: int | None = None,
    references: tuple[NewReference, ...] = (),
) -> NewJob:
    return NewJob(
        guild_id=guild_id,
        channel_id=100 + guild_id,
        user_id=user_id,
        kind=JobKind.EDIT,
        prompt=prompt,
        provider=provider,
        parent_output_id=parent_output_id,
        references=references,
    )


@pytest.fixture(params=["sqlite", "postgres"])
async def fresh_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A database of its own, never migrated, dropped afterwards: for tests that change the
    schema version or need to start from nothing."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'fresh.db'}"
        return
    request.getfixturevalue("pg_database")  # skips (or fails) when PostgreSQL is unreachable
    url = await pg.create_temp_database()
    try:
        yield url
    finally:
        await pg.drop_database(url)
