"""Secrets and privacy end to end: the real bot on the fake Discord, the AIML fake and
PostgreSQL, run with recognisable credentials and a phone photo carrying GPS EXIF.

Afterwards every log record (DEBUG and up, tracebacks included), every request body and file
the bot sent to Discord, every stored row and what the provider received are searched: no
credential may appear anywhere, and no reference's metadata may leave the bot.
"""

from __future__ import annotations

import base64
import json
import logging
import re
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from bot.config import Settings
from tests import imagecorpus as corpus
from tests import pg
from tests.bot.conftest import Harness
from tests.discord_fake import FileUpload
from tests.fakes import Outcome

TOKEN = "KXSECRET-DISCORD-TOKEN.Zm9vYmFyYmF6.qux"
API_KEY = "KXSECRET-AIML-KEY-5f1e9c2d7a"
DB_PASSWORD = "KXSECRET-DB-PASSWORD-83b1"
SECRETS = (TOKEN, API_KEY, DB_PASSWORD)


def _with_password(url: str) -> str:
    parts = urlsplit(url)
    netloc = f"{parts.username}:{DB_PASSWORD}@{parts.hostname}:{parts.port}"
    return urlunsplit(parts._replace(netloc=netloc))


def _leaks(text: str) -> list[str]:
    return [secret for secret in SECRETS if secret in text]


async def _stored_text(url: str) -> str:
    """Every row of every table, as PostgreSQL prints it."""
    conn = await asyncpg.connect(url)
    try:
        tables = await conn.fetch(
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
        )
        rows = []
        for table in tables:
            name = table["tablename"]
            rows += [r["t"] for r in await conn.fetch(f'SELECT t::text AS t FROM "{name}" t')]
        return "\n".join(rows)
    finally:
        await conn.close()


def _sent_references(bodies: list[Any]) -> list[bytes]:
    """The reference bytes the provider received (data URIs; a URL would be the original)."""
    found = []
    for body in bodies:
        urls = body.get("image_url") or []
        for url in [urls] if isinstance(urls, str) else urls:
            assert url.startswith("data:"), f"the provider was sent the original file: {url}"
            found.append(base64.b64decode(url.split(",", 1)[1]))
    return found


def test_settings_never_show_the_database_password() -> None:
    url = f"postgresql://kontext:{DB_PASSWORD}@db.internal:5432/kontext?sslmode=require"
    settings = Settings(_env_file=None, database_url=url, discord_token=TOKEN)
    shown = [
        repr(settings),
        str(settings),
        str(settings.model_dump()),
        settings.model_dump_json(),
        str(settings.database_url),
        f"{settings.database_url}",
    ]
    assert not any(_leaks(text) for text in shown), shown
    assert "postgresql://kontext:***@db.internal:5432/kontext?sslmode=require" in shown[-1]
    assert settings.database_url.get_secret_value() == url
    in_query = Settings(_env_file=None, database_url=f"postgresql://h/db?password={DB_PASSWORD}")
    assert not _leaks(repr(in_query)) and "password=***" in str(in_query.database_url)


async def test_no_secret_leaks_and_no_metadata_leaves(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    reason = await pg.unreachable_reason()
    if reason is not None:
        if pg.postgres_required():
            pytest.fail(reason)
        pytest.skip(reason)
    caplog.set_level(logging.DEBUG)
    harness.fake.token = TOKEN
    harness.provider.api_key = API_KEY
    plain_url = await pg.create_temp_database()
    url = _with_password(plain_url)  # the server trusts local users, so any password works
    try:
        await harness.start(database_url=url)
        photo = FileUpload("holiday.jpg", corpus.make_jpeg_with_metadata(320, 240), "image/jpeg")
        done = await harness.edit_done("make it sunset", image=photo)
        harness.provider.script("submit", Outcome.http(401, "Invalid API key"))
        _handle, ack = await harness.edit("and again", image=photo)
        job_id = int(re.findall(r"job (\d+)", ack.content)[0])
        waiting = await harness.job(job_id)
        assert waiting.status_message_id is not None
        app = harness.app
        assert app is not None
        # A refused key pauses the provider (the job waits) and tells the operator.
        await harness.fake.wait_for(
            lambda: app.ops.pauses.pause_of("aimlapi") is not None, what="the pause"
        )
        await harness.stop()

        # Secrets: logs, everything sent to Discord, everything stored.
        formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
        for record in caplog.records:
            line = formatter.format(record)
            assert not _leaks(line), line
        for request in harness.fake.requests:
            sent = json.dumps(request.body, default=str) + request.path + str(request.query)
            sent += "".join(f.filename + repr(f.data[:0]) for f in request.files)
            assert not _leaks(sent), request
        for message in harness.fake.messages.values():
            assert not _leaks(message.content), message
        stored = await _stored_text(plain_url)
        assert "make it sunset" in stored  # the scan does see the rows
        assert not _leaks(stored)

        # Privacy: neither the provider nor storage got the photo's metadata.
        sent_refs = _sent_references(harness.provider.bodies("submit"))
        assert sent_refs, "no reference reached the provider"
        for data in sent_refs:
            assert corpus.METADATA_MARKER not in data
            assert b"Exif\x00\x00" not in data
        stored_bytes = await _stored_blobs(plain_url)
        assert stored_bytes and all(corpus.METADATA_MARKER not in b for b in stored_bytes)
        assert done.result.attachments
    finally:
        await harness.stop()
        await pg.drop_database(plain_url)


async def _stored_blobs(url: str) -> list[bytes]:
    conn = await asyncpg.connect(url)
    try:
        return [bytes(r["data"]) for r in await conn.fetch("SELECT data FROM blobs")]
    finally:
        await conn.close()
