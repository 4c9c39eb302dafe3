"""The live status under a burst: 200 jobs in one channel, their queue positions moving as
jobs start, every status reaching its final text, and not one edit answered with 429 by the
fake's per-channel rate limiter."""

from __future__ import annotations

import discord

from bot.clock import ManualClock
from bot.discord.edit_budget import EDITS_PER_WINDOW, WINDOW_SECONDS, ChannelBudget
from bot.jobs import events
from bot.models import Job, JobKind, JobParams, JobStatus
from tests.bot.conftest import Harness

BURST = 200
EDIT_ROUTE = "/channels/{channel_id}/messages/{message_id}"


def _job(job_id: int, guild_id: int, channel_id: int, message_id: int) -> Job:
    return Job(
        id=job_id,
        guild_id=guild_id,
        channel_id=channel_id,
        thread_id=None,
        user_id=1,
        kind=JobKind.IMAGINE,
        prompt=f"picture {job_id}",
        params=JobParams(),
        provider="aimlapi",
        model=None,
        parent_output_id=None,
        reply_to_message_id=None,
        status=JobStatus.QUEUED,
        status_message_id=message_id,
        created_at=0.0,
        updated_at=0.0,
    )


async def test_a_burst_of_200_jobs_stays_within_discords_edit_limits(kontext: Harness) -> None:
    assert kontext.app is not None
    fake, app = kontext.fake, kontext.app
    fake.limit_message_edits(per=5, seconds=5.0)
    clock = ManualClock(1_900_000_000.0)
    board = app.delivery.board
    board.budget = ChannelBudget(clock)
    general = fake.channel("general")
    channel = app.bot.get_channel(general.id)
    assert isinstance(channel, discord.TextChannel)

    waiting: list[int] = []  # job ids in queue order

    async def queue_eta(job: Job) -> tuple[int | None, float | None]:
        if job.id not in waiting:
            return None, None
        position = waiting.index(job.id) + 1
        return position, position * 30.0

    board.follow_queue(queue_eta)
    jobs: list[Job] = []
    for n in range(1, BURST + 1):
        message = await channel.send(f"status {n}")
        job = _job(n, general.guild_id or 0, general.id, message.id)
        jobs.append(job)
        board.placed(job.id, general.id, message.id, message.content)
        waiting.append(job.id)
        await board.on_event(
            events.JobQueued(job=job, at=clock.now(), position=n, eta_seconds=n * 30.0)
        )

    async def settle() -> None:
        """Let every edit that is due now finish, then move both clocks to the next wake."""
        await fake.wait_for(
            lambda: clock.sleepers > 0 or not board.editing,
            what="the board to wait for its budget",
        )
        wake = clock.next_wake()
        if wake is not None:
            fake.clock.advance(wake - clock.now())
            clock.set(wake)

    # The queue moves: four at a time start and finish, the rest see their new positions.
    while waiting:
        for job_id in waiting[:4]:
            job = jobs[job_id - 1]
            await board.on_event(events.JobStarted(job=job, at=clock.now()))
            waiting.remove(job_id)
            await board.on_event(events.JobDone(job=job, at=clock.now(), images=()))
        await settle()
    while board.editing:
        await settle()

    edits = fake.requests_to("PATCH", EDIT_ROUTE)
    assert fake.rate_limited == [] and fake.pop_violations() == []
    done = [fake.messages[j.status_message_id or 0].content for j in jobs]
    assert all("**Done**" in text for text in done)
    moved = [e for e in edits if "Queued** — position" in str(e.body)]
    assert moved, "no waiting job was shown a new position"
    # Coalesced: far fewer edits than events (each job saw up to 50 queue moves).
    assert BURST <= len(edits) < BURST * 3
    spent = clock.now() - 1_900_000_000.0
    assert len(edits) <= (spent / WINDOW_SECONDS + 1) * EDITS_PER_WINDOW
