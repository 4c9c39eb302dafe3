"""What every step of a job run shares: the run context, endings, deadlines, requeues.

The steps of a normal job (:mod:`bot.jobs.runner`) and of a batch made by separate requests
(:mod:`bot.jobs.batch`) are built from these; :mod:`bot.jobs.driver` picks the steps of a job
and drives it. A refused account pauses its provider here too (see :mod:`bot.jobs.pausing`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar

from bot.clock import Clock, within
from bot.i18n import Text
from bot.media import Downloader
from bot.models import Job, JobStatus
from bot.providers.base import Finished, GenerationRequest, Provider
from bot.providers.errors import (
    ProviderError,
)
from storage.sql import Repository

from . import messages
from .events import (
    EventBus,
    JobDelayed,
    JobExpired,
    JobFailed,
    JobPaused,
)
from .limits import EngineConfig
from .pausing import LanePauses
from .requests import Deliverer, OutputValidator
from .routing import Route
from .stored import encode_finished

log = logging.getLogger(__name__)


Park = Callable[[float | None, asyncio.Event | None], Awaitable[None]]


T = TypeVar("T")


@dataclass(slots=True)
class RunContext:
    """The services a job run needs; built once by the engine."""

    repo: Repository
    providers: Mapping[str, Provider]
    clock: Clock
    config: EngineConfig
    events: EventBus
    deliverer: Deliverer
    fetcher: Downloader | None
    validate: OutputValidator
    random: Callable[[], float]
    park: Park  # wait on the clock (or until the event is set), visible to the drain mode
    on_requeue: Callable[[Job], None]  # the job went back to the queue (maybe with run_after)
    on_rate_limited: Callable[[str, float], None]  # provider, seconds to hold off
    on_provider_done: Callable[[int], None]  # the job no longer needs its provider slot
    #: Where a job goes when its provider failed for good (the router's choice), or None.
    reroute: Callable[[Job, GenerationRequest], Awaitable[Route | None]]
    pauses: LanePauses | None = None  # pausing a provider whose account was refused


Step = Callable[[RunContext, Job, asyncio.Event], Awaitable[Job | None]]


def label_of(ctx: RunContext, provider: str) -> str:
    found = ctx.providers.get(provider)
    return found.capabilities.label if found is not None else provider


# --- moves -------------------------------------------------------------------------------------


async def move(
    ctx: RunContext,
    job: Job,
    to: JobStatus,
    *,
    expected: JobStatus | None = None,
    now: float | None = None,
    **fields: object,
) -> Job | None:
    """Move ``job`` to ``to`` at ``now`` (default: the clock's) if it is still ``expected``
    (default: the status it was read with), setting ``fields``; ``None`` if it changed."""
    return await ctx.repo.transition(
        job.id,
        expected=job.status if expected is None else expected,
        to=to,
        now=ctx.clock.now() if now is None else now,
        **fields,
    )


async def keep_result(
    ctx: RunContext,
    job: Job,
    result: Finished,
    *,
    expected: JobStatus,
    now: float | None = None,
    **fields: object,
) -> Job | None:
    """Keep a finished provider result (and its credits) for the download step."""
    return await move(
        ctx,
        job,
        JobStatus.DOWNLOADING,
        expected=expected,
        now=now,
        result_json=encode_finished(result),
        credits=result.credits,
        **fields,
    )


# --- endings ----------------------------------------------------------------------------------


async def end_job(
    ctx: RunContext, job: Job, status: JobStatus, code: str, reason: Text | str
) -> Job | None:
    """Move a job to a terminal status and tell the sinks; ``None`` if it changed under us.
    ``reason`` is kept with the job (in English and as a Text: ``Job.failure_text``)."""
    now = ctx.clock.now()
    ended = await move(ctx, job, status, now=now, error_code=code, **messages.stored(reason))
    if ended is None:
        return None
    if status is JobStatus.EXPIRED:
        await ctx.events.emit(JobExpired(job=ended, at=now, reason_text=reason))
    else:
        await ctx.events.emit(JobFailed(job=ended, at=now, code=code, reason_text=reason))
    log.info("job %d ended %s (%s)", job.id, status.value, code)
    return ended


async def expire(ctx: RunContext, job: Job, *, at_provider: bool = False) -> Job | None:
    """End the job at its deadline; ``at_provider``: it was waiting for the provider (a
    request or a download in flight, or polls), not for its turn in the queue."""
    deadline = ctx.config.deadline_seconds
    reason = (
        messages.expired_at_provider(deadline, label_of(ctx, job.provider))
        if at_provider
        else messages.expired(deadline)
    )
    ended = await end_job(ctx, job, JobStatus.EXPIRED, messages.EXPIRED, reason)
    if ended is not None and job.provider_handle and job.status is JobStatus.RUNNING:
        await cancel_at_provider(ctx, job.provider, job.provider_handle)
    return ended


async def fail_provider(ctx: RunContext, job: Job, err: ProviderError) -> Job | None:
    code, reason = messages.provider_failure(err, label_of(ctx, job.provider))
    status = JobStatus.MODERATED if code == messages.MODERATED else JobStatus.FAILED
    log.warning("job %d: %s refused it: %s (%s)", job.id, job.provider, err.code, err.detail)
    return await end_job(ctx, job, status, code, reason)


async def cancel_at_provider(ctx: RunContext, provider_name: str, handle: str) -> None:
    provider = ctx.providers.get(provider_name)
    if provider is None:
        return
    try:
        await provider.cancel(handle)
    except Exception:
        log.warning("cancelling %s at %s failed", handle, provider_name, exc_info=True)


# --- deadlines and waits ------------------------------------------------------------------------


def past_deadline(job: Job, now: float) -> bool:
    return job.deadline_at is not None and now >= job.deadline_at


async def before_deadline(ctx: RunContext, job: Job, work: Awaitable[T]) -> T:
    """``work``, cut off (:class:`TimeoutError`) when the job's deadline passes."""
    if job.deadline_at is None:
        return await work
    return await within(ctx.clock, job.deadline_at - ctx.clock.now(), work)


async def requeue(
    ctx: RunContext, job: Job, *, delay: float, reason: Text, attempts: int
) -> Job | None:
    """Back to the queue until ``now + delay`` (no slot held while waiting)."""
    now = ctx.clock.now()
    retry_at = now + delay
    if job.deadline_at is not None and retry_at >= job.deadline_at:
        return await expire(ctx, job)
    queued = await move(ctx, job, JobStatus.QUEUED, now=now, run_after=retry_at, attempts=attempts)
    if queued is not None:
        log.info("job %d retries at +%.1fs: %s", job.id, delay, reason)
        await ctx.events.emit(JobDelayed(job=queued, at=now, reason_text=reason, retry_at=retry_at))
        ctx.on_requeue(queued)
    return None


@dataclass
class PollPace:
    """The waits between polls of one job: the provider's minimum interval at first, then
    longer by the engine's backoff factor, up to the ceiling (never below the minimum)."""

    interval: float
    ceiling: float
    backoff: float

    @classmethod
    def start(cls, ctx: RunContext, provider: Provider) -> PollPace:
        minimum = provider.capabilities.min_poll_interval
        return cls(minimum, max(ctx.config.poll_max_interval, minimum), ctx.config.poll_backoff)

    def after_answer(self) -> float:
        """The wait after an answer that the job is still running; the next one is longer."""
        delay = self.interval
        self.interval = min(self.interval * self.backoff, self.ceiling)
        return delay


async def wait_to_poll(ctx: RunContext, job: Job, delay: float, interrupt: asyncio.Event) -> bool:
    """Park before the next poll (never past the job's deadline); ``False`` when the job
    stopped running meanwhile: cancelled (the canceller stopped it at the provider) or taken
    over by another worker."""
    if job.deadline_at is not None:
        delay = min(delay, max(0.0, job.deadline_at - ctx.clock.now()))
    await ctx.park(delay, interrupt)
    if not interrupt.is_set():
        return True
    interrupt.clear()
    current = await ctx.repo.get_job(job.id)
    return current is not None and current.status is JobStatus.RUNNING


# --- a refused account pauses its provider -------------------------------------------------


#: Waiting jobs told at once when a provider pauses (newest first); the rest learn it when
#: their status is next refreshed.
_TELL_AT_MOST = 1000


async def record_pause(ctx: RunContext, job: Job, err: ProviderError) -> None:
    """Pause the job's provider for everyone (the handler stores it and tells the operator);
    the first time in this engine, tell the requesters of the jobs already waiting for it."""
    pauses = ctx.pauses
    assert pauses is not None and pauses.handler is not None
    newly = pauses.pause(job.provider, err.code)
    try:
        await pauses.handler.paused(job.provider, err)
    except Exception:
        log.exception("recording the pause of %s failed", job.provider)
    if newly:
        now = ctx.clock.now()
        for waiting in await ctx.repo.list_jobs(statuses=[JobStatus.QUEUED], limit=_TELL_AT_MOST):
            if waiting.provider == job.provider:
                await ctx.events.emit(paused_event(ctx, waiting, err.code, now))


async def pause_and_requeue(ctx: RunContext, job: Job, err: ProviderError) -> None:
    """A submit met a refused account: pause the provider and put the job back in the queue."""
    await record_pause(ctx, job, err)
    now = ctx.clock.now()
    queued = await move(ctx, job, JobStatus.QUEUED, now=now, run_after=None)
    if queued is None:
        return
    log.warning("job %d waits: %s is paused (%s)", job.id, job.provider, err.code)
    await ctx.events.emit(paused_event(ctx, queued, err.code, now))
    ctx.on_requeue(queued)


def paused_event(ctx: RunContext, job: Job, code: str, now: float) -> JobPaused:
    reason = messages.paused(label_of(ctx, job.provider), code)
    return JobPaused(job=job, at=now, provider=job.provider, code=code, reason_text=reason)


async def announce_pause(ctx: RunContext, job: Job) -> None:
    """Tell the requester of a job just queued for a paused provider that it waits."""
    pauses = ctx.pauses
    if pauses is not None and pauses.handler is not None and pauses.is_paused(job.provider):
        code = pauses.paused_code.get(job.provider, "auth")
        await ctx.events.emit(paused_event(ctx, job, code, ctx.clock.now()))
