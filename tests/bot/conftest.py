"""The real bot, built by ``bot.app.open_app``, against the fake Discord and a provider fake."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bot.app import App, open_app
from bot.config import Settings
from bot.models import Job
from tests.discord_fake import Actor, FakeDiscord, InteractionHandle, StoredMessage, png_file
from tests.discord_fake.plugin import (  # noqa: F401 - pytest finds fixtures and hooks by name
    discord_spec,
    fake_discord,
    pytest_configure,
    pytest_report_header,
    pytest_terminal_summary,
)
from tests.fakes import AimlApiFake, docs_dir, settings_for


@dataclass
class Delivered:
    job_id: int
    status: StoredMessage
    thread_id: int
    result: StoredMessage


class Harness:
    """One fake Discord, one provider fake, one database file, and the bot (restartable)."""

    def __init__(self, fake: FakeDiscord, provider: AimlApiFake, db: Path) -> None:
        self.fake = fake
        # Restarts here come within Discord's 5 s IDENTIFY window, which a real restart is not.
        fake.identify_window = 0.05
        self.provider = provider
        self.db = db
        self.app: App | None = None
        self._stack: contextlib.AsyncExitStack | None = None

    def settings(self, **overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "database_url": f"sqlite:///{self.db}",
            "discord_api_base": self.fake.api_base,
            "discord_gateway_url": self.fake.gateway_url,
            "discord_token": self.fake.token,
            "dev_guild_id": self.fake.guild.id,
        }
        values.update(overrides)
        return settings_for(self.provider, **values)

    async def start(self, *, engine: dict[str, Any] | None = None, **overrides: Any) -> App:
        """Build the app from settings (``overrides``) and connect it; ``engine`` overrides
        the engine's configuration (e.g. faster retries)."""
        assert self._stack is None, "already running"
        stack = contextlib.AsyncExitStack()
        await stack.__aenter__()
        try:
            app = await stack.enter_async_context(
                open_app(
                    self.settings(**overrides), guild_ready_timeout=0.05, engine_overrides=engine
                )
            )
            await stack.enter_async_context(self.fake.running(app.bot))
        except BaseException:
            await stack.aclose()
            raise
        self._stack, self.app = stack, app
        return app

    async def stop(self) -> None:
        if self._stack is not None:
            stack, self._stack, self.app = self._stack, None, None
            await stack.aclose()

    async def restart(self, **overrides: Any) -> App:
        await self.stop()
        return await self.start(**overrides)

    # --- reading the fake ---------------------------------------------------------------

    def member(self, name: str = "alice") -> Actor:
        return self.fake.member(name)

    def results(self, channel_id: int) -> list[StoredMessage]:
        """The bot's result messages (they carry a Reroll button) in a channel, oldest first."""
        return [m for m in self.fake.bot_messages(channel_id) if "kx:reroll:" in str(m.components)]

    async def edit(
        self,
        prompt: str = "make it blue",
        *,
        who: str = "alice",
        channel: str = "general",
        **options: Any,
    ) -> tuple[InteractionHandle, StoredMessage]:
        """Run /edit with one PNG (unless ``image`` is given); return it and its answer."""
        options.setdefault("image", png_file())
        handle = await self.member(who).run_command(
            "edit", in_channel=self.fake.channel(channel), prompt=prompt, **options
        )
        assert await handle.acknowledged() == 5  # deferred, ephemeral
        return handle, await handle.response()

    async def edit_done(self, prompt: str = "make it blue", **options: Any) -> Delivered:
        """Run /edit and wait for the status, the thread and the result."""
        _handle, ack = await self.edit(prompt, **options)
        assert "Queued as job" in ack.content, ack.content
        job_id = int(ack.content.split("job ")[1].split(".")[0])
        job = await self.job(job_id)
        assert job.status_message_id is not None
        status = self.fake.messages[job.status_message_id]
        thread_id = job.thread_id or job.channel_id
        result = await self.result_in(thread_id)
        status = await self.fake.wait_for(
            lambda: "Done" in status.content and status, what="the status to say Done"
        )
        return Delivered(job_id, status, thread_id, result)

    async def job(self, job_id: int) -> Job:
        assert self.app is not None
        job = await self.app.repo.get_job(job_id)
        assert job is not None
        return job

    async def result_in(self, channel_id: int, timeout: float = 10.0) -> StoredMessage:  # noqa: ASYNC109
        return await self.fake.wait_for_message(
            channel_id, lambda m: "kx:reroll:" in str(m.components), timeout=timeout
        )


MESSAGE_ROUTES = (
    ("POST", "/channels/{channel_id}/messages"),
    ("PATCH", "/channels/{channel_id}/messages/{message_id}"),
    ("POST", "/webhooks/{application_id}/{interaction_token}"),
    ("PATCH", "/webhooks/{application_id}/{interaction_token}/messages/{message_id}"),
    ("POST", "/interactions/{interaction_id}/{interaction_token}/callback"),
)


def assert_mentions_safe(fake: FakeDiscord) -> None:
    """Every message the bot sent or edited carried allowed_mentions that ping nobody but,
    at most, one member (the requester): never @everyone, @here or a role."""
    humans = {u.id for u in fake.users.values() if not u.bot}
    for method, template in MESSAGE_ROUTES:
        for record in fake.requests_to(method, template):
            body = record.body if isinstance(record.body, dict) else {}
            if "type" in body:  # an interaction callback: only 4 and 7 carry a message
                body = (body.get("data") or {}) if body["type"] in (4, 7) else {}
            if not isinstance(body, dict) or not ({"content", "components"} & body.keys()):
                continue
            allowed = body.get("allowed_mentions")
            assert isinstance(allowed, dict), f"{record} sent no allowed_mentions"
            assert not allowed.get("parse"), f"{record} allows {allowed}"
            assert not allowed.get("roles") and not allowed.get("replied_user"), record
            users = {int(u) for u in allowed.get("users") or []}
            assert len(users) <= 1 and users <= humans, f"{record} may ping {users}"


@pytest.fixture
async def provider() -> AsyncIterator[AimlApiFake]:
    async with AimlApiFake(docs=docs_dir()) as fake:
        yield fake
    fake.assert_clean()


@pytest.fixture
async def harness(
    fake_discord: FakeDiscord,  # noqa: F811
    provider: AimlApiFake,
    tmp_path: Path,
) -> AsyncIterator[Harness]:
    h = Harness(fake_discord, provider, tmp_path / "kontext.db")
    try:
        yield h
    finally:
        await h.stop()
    assert_mentions_safe(fake_discord)


@pytest.fixture
async def kontext(harness: Harness) -> Harness:
    """The bot running."""
    await harness.start()
    return harness
