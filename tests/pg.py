"""Throw-away PostgreSQL databases for tests (a plain module, so any conftest can use it).

``KONTEXT_TEST_POSTGRES_URL`` names a server and a database to administer it from (default
``postgresql://postgres@127.0.0.1:5432/postgres``). Each test session creates a database with
a random name and drops it at the end. When the server is unreachable the PostgreSQL tests
are skipped, unless ``KONTEXT_REQUIRE_POSTGRES=1`` (CI), where that is a failure.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
_T = TypeVar("_T")


def admin_url() -> str:
    return os.environ.get("KONTEXT_TEST_POSTGRES_URL", DEFAULT_ADMIN_URL)


def postgres_required() -> bool:
    return os.environ.get("KONTEXT_REQUIRE_POSTGRES") == "1"


def with_database(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


def database_name(url: str) -> str:
    return urlsplit(url).path.lstrip("/")


async def unreachable_reason() -> str | None:
    """Why PostgreSQL cannot be used for tests, or ``None`` when it can."""
    try:
        conn = await asyncpg.connect(admin_url(), timeout=5)
    except (OSError, TimeoutError, asyncpg.PostgresError) as err:
        return f"PostgreSQL at {admin_url()} is unreachable ({err}); set KONTEXT_TEST_POSTGRES_URL"
    await conn.close()
    return None


async def create_temp_database() -> str:
    """Create an empty database with a random name; returns its URL."""
    name = f"kontext_test_{secrets.token_hex(6)}"
    conn = await asyncpg.connect(admin_url())
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return with_database(admin_url(), name)


async def drop_database(url: str) -> None:
    name = database_name(url)
    conn = await asyncpg.connect(admin_url())
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


async def reset_database(url: str) -> None:
    """Empty every table but the schema version, so a session database serves many tests."""
    conn = await asyncpg.connect(url)
    try:
        names = await conn.fetch(
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() "
            "AND tablename <> 'kontext_schema'"
        )
        if names:
            tables = ", ".join(f'"{r["tablename"]}"' for r in names)
            await conn.execute(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")
        await conn.execute(
            "DO $$ BEGIN IF to_regclass('queue_serve_seq') IS NOT NULL THEN "
            "ALTER SEQUENCE queue_serve_seq RESTART; END IF; END $$"
        )
    finally:
        await conn.close()


def run_in_own_loop(make: Callable[[], Awaitable[_T]]) -> _T:
    """Run a coroutine to completion on a private loop in a thread: session fixtures are
    first requested from inside a test's running loop."""

    async def runner() -> _T:
        return await make()

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, runner()).result()


def session_database() -> Iterator[str]:
    """The body of a session-scoped fixture: yields the URL of a fresh database and drops it
    afterwards; skips (or fails, with KONTEXT_REQUIRE_POSTGRES=1) when PostgreSQL is
    unreachable. Usage: ``yield from pg.session_database()``."""
    reason = run_in_own_loop(unreachable_reason)
    if reason is not None:
        if postgres_required():
            pytest.fail(f"KONTEXT_REQUIRE_POSTGRES=1 but {reason}")
        pytest.skip(reason)
    url = run_in_own_loop(create_temp_database)
    try:
        yield url
    finally:
        run_in_own_loop(lambda: drop_database(url))
