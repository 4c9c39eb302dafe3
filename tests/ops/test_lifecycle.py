"""Data lifecycle in the running core, on a ManualClock: retention, a member's erasure, a
server the bot left, and the daily credit cap."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.jobs import LimitReached
from bot.models import AspectRatio, GuildSettings, JobParams, JobStatus
from storage.base import LimitKind
from tests.fakes import Outcome
from tests.jobs.conftest import edit
from tests.ops.conftest import Stack, stack_for

DAY = 86_400.0


async def _done(
    stack: Stack, prompt: str, *, guild: int = 1, user: int = 100, ratio: str = "4:3"
) -> int:
    """A delivered job; the fake draws the same image for the same ratio (and outputs are
    content-addressed), so tests that compare bytes give each job its own ratio."""
    request = edit(prompt, guild=guild, user=user)
    params = JobParams(aspect_ratio=AspectRatio(ratio))
    job = await stack.engine.submit(request.model_copy(update={"params": params}))
    await stack.engine.run_until_idle()
    stored = await stack.repo.get_job(job.id)
    assert stored is not None and stored.status is JobStatus.DONE
    return job.id


async def _next_pass(stack: Stack, days: float) -> None:
    runs = stack.ops.lifecycle.runs
    stack.clock.advance(days * DAY)
    await stack.until(lambda: stack.ops.lifecycle.runs > runs, "a retention pass")


async def test_retention_runs_in_the_running_bot(stack: Stack) -> None:
    old = await _done(stack, "an old secret prompt")
    (old_output,) = await stack.repo.outputs_for_job(old)
    await _next_pass(stack, 20)
    recent = await _done(stack, "a recent prompt", ratio="16:9")
    (recent_output,) = await stack.repo.outputs_for_job(recent)
    await _next_pass(stack, 11)  # the first job is 31 days old, the second 11

    gone = await stack.repo.get_job(old)
    assert gone is not None and gone.prompt == "" and gone.erased
    assert await stack.repo.get_blob(old_output.content_hash) is None
    (shared_reference,) = await stack.repo.get_references(old)  # the recent job uses it too
    assert await stack.repo.get_blob(shared_reference.content_hash) is not None
    kept = await stack.repo.get_job(recent)
    assert kept is not None and kept.prompt == "a recent prompt"
    assert await stack.repo.get_blob(recent_output.content_hash) is not None
    await _next_pass(stack, 20)  # now the recent job is 31 days old too
    assert await stack.repo.get_blob(shared_reference.content_hash) is None
    assert await stack.repo.get_blob(recent_output.content_hash) is None


async def test_retention_zero_keeps_everything(tmp_path: Path) -> None:
    async with stack_for(tmp_path, retention_days=0) as stack:
        job = await _done(stack, "kept forever")
        (output,) = await stack.repo.outputs_for_job(job)
        await _next_pass(stack, 400)
        kept = await stack.repo.get_job(job)
        assert kept is not None and kept.prompt == "kept forever"
        assert await stack.repo.get_blob(output.content_hash) is not None


async def test_forget_a_member(stack: Stack) -> None:
    mine = await _done(stack, "mine", user=100)
    theirs = await _done(stack, "theirs", user=200, ratio="16:9")
    await stack.repo.pause_provider("aimlapi", code="credits", detail=None, now=stack.clock.now())
    await stack.ops.pauses.tick()
    waiting = await stack.engine.submit(edit("still queued", user=100))
    (my_output,) = await stack.repo.outputs_for_job(mine)

    erased = await stack.ops.lifecycle.forget_user(100, guild_id=1)

    assert (erased.jobs, erased.still_running) == (2, 0)
    assert erased.images >= 1
    assert await stack.repo.get_blob(my_output.content_hash) is None
    for job_id in (mine, waiting.id):
        job = await stack.repo.get_job(job_id)
        assert job is not None and job.prompt == "" and job.status.terminal
    other = await stack.repo.get_job(theirs)
    assert other is not None and other.prompt == "theirs"
    (their_output,) = await stack.repo.outputs_for_job(theirs)
    assert await stack.repo.get_blob(their_output.content_hash) is not None


async def test_a_server_the_bot_left_is_deleted_after_the_grace_period(stack: Stack) -> None:
    left = await _done(stack, "in the server we leave", guild=1)
    stays = await _done(stack, "in the server we stay in", guild=2, ratio="16:9")
    await stack.ops.lifecycle.sync_guilds([2])  # at start: the bot is in server 2 only
    await _next_pass(stack, 29)
    assert await stack.repo.get_job(left) is not None  # still within the grace period
    await stack.ops.lifecycle.guild_left(2)
    await stack.ops.lifecycle.guild_present(2)  # and it came back
    await _next_pass(stack, 2)

    assert await stack.repo.get_job(left) is None
    assert await stack.repo.get_job(stays) is not None
    assert await stack.repo.guilds_with_data() == [2]


async def test_daily_credit_cap_refuses_with_data(stack: Stack) -> None:
    await stack.repo.save_guild_settings(
        GuildSettings(guild_id=1, daily_credit_cap=5), now=stack.clock.now()
    )
    stack.fake.script("submit", Outcome.success(shape="data", credits=7.5))
    await _done(stack, "an expensive one")
    with pytest.raises(LimitReached) as refused:
        await stack.engine.submit(edit("one more"))
    assert refused.value.limit is LimitKind.DAILY_CREDITS
    assert refused.value.retry_in is not None and 0 < refused.value.retry_in <= DAY
    assert "5 credits" in refused.value.user_message and "00:00 UTC" in refused.value.user_message
    assert await stack.repo.count_queued() == 0
    stack.clock.advance(refused.value.retry_in)
    await _done(stack, "the next day")
    await stack.engine.submit(edit("another guild", guild=2))  # other servers are not capped
