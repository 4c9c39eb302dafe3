"""Crashes: the bot process is killed with SIGKILL mid-job, restarted, and the result is
posted exactly once. Also: delivering the same job again posts nothing new."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.jobs.limits import JobRetryPolicy
from tests.bot.conftest import Harness
from tests.conftest import REPO_ROOT
from tests.discord_fake import png_file
from tests.fakes import Outcome, env_for


def _env(kontext: Harness) -> dict[str, str]:
    fake = kontext.fake
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KONTEXT_", "DISCORD_"))}
    env.update(env_for(kontext.provider))
    env.update(
        DISCORD_TOKEN=fake.token,
        DISCORD_API_BASE=fake.api_base,
        DISCORD_GATEWAY_URL=fake.gateway_url,
        KONTEXT_DATABASE_URL=f"sqlite:///{kontext.db}",
        KONTEXT_DEV_GUILD_ID=str(fake.guild.id),
        KONTEXT_JOB_LEASE_SECONDS="1.5",
        KONTEXT_LOG_LEVEL="INFO",
        PYTHONWARNINGS="ignore::DeprecationWarning",
    )
    return env


@contextlib.contextmanager
def bot_process(kontext: Harness, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "bot", "run"],
            cwd=REPO_ROOT,
            env=_env(kontext),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


async def _connected(kontext: Harness, sessions_before: int) -> None:
    gateway = kontext.fake.gateway
    await kontext.fake.wait_for(
        lambda: len(gateway.sessions) > sessions_before and gateway.connected(),
        timeout=30,
        what="the bot process to connect",
    )


async def test_kill_9_mid_job_then_restart_posts_the_result_once(
    harness: Harness, tmp_path: Path
) -> None:
    fake, provider = harness.fake, harness.provider
    provider.script("submit", Outcome.stall())  # the first attempt hangs at the provider
    log = tmp_path / "bot.log"
    with bot_process(harness, log) as first:
        await _connected(harness, 0)
        handle = await harness.member("alice").run_command(
            "edit", in_channel="general", prompt="survive a crash", image=png_file()
        )
        ack = await handle.response(timeout=10)
        assert "Queued as job" in ack.content, log.read_text()
        await fake.wait_for(lambda: provider.submits == 1, timeout=10, what="the submit")
        first.kill()  # SIGKILL: no cleanup, the lease stays taken
        first.wait()
    status = next(m for m in fake.bot_messages("general") if "survive a crash" in m.content)
    thread = fake.channels[status.id]
    assert harness.results(thread.id) == []
    with bot_process(harness, log) as second:
        await _connected(harness, 1)
        result = await harness.result_in(thread.id, timeout=30)
        await fake.wait_for(
            lambda: "Done" in fake.messages[status.id].content, timeout=10, what="status done"
        )
    assert second.returncode == 0, log.read_text()  # SIGTERM stops the bot cleanly
    assert len(harness.results(thread.id)) == 1, log.read_text()
    assert "survive a crash" in result.content
    provider.release()


async def test_delivering_a_job_again_posts_nothing(kontext: Harness) -> None:
    done = await kontext.edit_done("only once")
    app = kontext.app
    assert app is not None
    job = await kontext.job(done.job_id)
    from bot.jobs.events import ResultImage

    images = []
    for output in await app.repo.outputs_for_job(job.id):
        data = await app.repo.get_blob(output.content_hash)
        assert data is not None
        images.append(ResultImage(output=output, data=data))
    await app.delivery.deliver(job, images)
    assert len(kontext.results(done.thread_id)) == 1


async def test_a_repeated_post_is_deduplicated_by_its_nonce(kontext: Harness) -> None:
    """The crash window between posting and recording: Discord drops the second post."""
    done = await kontext.edit_done("nonce")
    app = kontext.app
    assert app is not None
    job = await kontext.job(done.job_id)
    channel = app.bot.get_channel(done.thread_id)
    assert channel is not None and hasattr(channel, "send")
    again = await channel.send("repeat", nonce=job.delivery_nonce)
    assert again.id == done.result.id
    assert len(kontext.results(done.thread_id)) == 1
    assert re.search(r"kx\d+", job.delivery_nonce)


async def test_a_failure_after_posting_does_not_post_twice(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The window between Discord accepting the result and storage recording it: the engine
    delivers again, and the job's nonce makes Discord return the first message."""
    app = await harness.start(engine={"retry": JobRetryPolicy(base_delay=0.0)})
    real = app.repo.set_output_message
    failures = []

    async def fail_once(output_id: int, **fields: Any) -> None:
        if not failures:
            failures.append(output_id)
            raise OSError("disk full, just this once")
        await real(output_id, **fields)

    monkeypatch.setattr(app.repo, "set_output_message", fail_once)
    done = await harness.edit_done("posted once")
    assert failures
    assert len(harness.results(done.thread_id)) == 1
    posts = [
        r
        for r in harness.fake.requests_to("POST", "/channels/{channel_id}/messages")
        if (r.body or {}).get("nonce") == f"kx{done.job_id}"
    ]
    assert len(posts) == 2  # posted twice, deduplicated by Discord
