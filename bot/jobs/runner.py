"""One job through its lifecycle, as plain async functions with explicit retry counts.

Every step writes the status that allows its side effect before doing it (compare-and-set),
so a crash at any point resumes correctly: ``submitting`` is submitted again, ``running``
with a handle is polled (never resubmitted, which would bill twice), a saved result is
downloaded, ``delivering`` is delivered again (the deliverer is idempotent per job). When a
compare-and-set fails the job was cancelled or expired under us: the step stops quietly.

The job's deadline bounds every call to the outside (submit, each poll, each download) as a
whole, measured on the injected clock, so a provider that holds a request open or trickles
its answer cannot keep a job past it. A submit is sent again only when the provider error
says nothing billable reached the provider (``nothing_billed``) or it answered 429.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar

from bot.clock import Clock, within
from bot.errors import KontextError
from bot.media import DownloadFailed, DownloadRefused, result_problem, worth_retrying
from bot.models import Job, JobStatus, NsfwPolicy
from bot.ops.logs import bind_job
from bot.providers.base import (
    Finished,
    GenerationRequest,
    Pending,
    Provider,
    Submitted,
)
from bot.providers.errors import (
    ProviderError,
    ProviderTimeout,
    RateLimited,
    UpstreamError,
)
from storage.base import Repository

from . import messages
from .events import (
    EventBus,
    JobDelayed,
    JobDone,
    JobExpired,
    JobFailed,
    JobFallback,
    JobProgress,
    JobStarted,
    ResultImage,
)
from .limits import EngineConfig, utc_day
from .pausing import ACCOUNT_ERRORS, LanePauses, pause_and_requeue, record_pause
from .requests import Deliverer, Fetcher, OutputValidator
from .routing import Route
from .stored import build_request, decode_finished, encode_finished

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
    fetcher: Fetcher | None
    validate: OutputValidator
    random: Callable[[], float]
    park: Park  # wait on the clock (or until the event is set), visible to the drain mode
    on_requeue: Callable[[Job], None]  # the job went back to the queue (maybe with run_after)
    on_rate_limited: Callable[[str, float], None]  # provider, seconds to hold off
    on_provider_done: Callable[[int], None]  # the job no longer needs its provider slot
    #: Where a job goes when its provider failed for good (the router's choice), or None.
    reroute: Callable[[Job, GenerationRequest], Awaitable[Route | None]]
    pauses: LanePauses | None = None  # pausing a provider whose account was refused


def label_of(ctx: RunContext, provider: str) -> str:
    found = ctx.providers.get(provider)
    return found.capabilities.label if found is not None else provider


# --- endings ----------------------------------------------------------------------------------


async def end_job(
    ctx: RunContext, job: Job, status: JobStatus, code: str, reason: str
) -> Job | None:
    """Move a job to a terminal status and tell the sinks; ``None`` if it changed under us."""
    now = ctx.clock.now()
    ended = await ctx.repo.transition(
        job.id, expected=job.status, to=status, now=now, error_code=code, error_message=reason
    )
    if ended is None:
        return None
    if status is JobStatus.EXPIRED:
        await ctx.events.emit(JobExpired(job=ended, at=now, reason=reason))
    else:
        await ctx.events.emit(JobFailed(job=ended, at=now, code=code, reason=reason))
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


def past_deadline(job: Job, now: float) -> bool:
    return job.deadline_at is not None and now >= job.deadline_at


async def before_deadline(ctx: RunContext, job: Job, work: Awaitable[T]) -> T:
    """``work``, cut off (:class:`TimeoutError`) when the job's deadline passes."""
    if job.deadline_at is None:
        return await work
    return await within(ctx.clock, job.deadline_at - ctx.clock.now(), work)


async def requeue(
    ctx: RunContext, job: Job, *, delay: float, reason: str, attempts: int
) -> Job | None:
    """Back to the queue until ``now + delay`` (no slot held while waiting)."""
    now = ctx.clock.now()
    retry_at = now + delay
    if job.deadline_at is not None and retry_at >= job.deadline_at:
        return await expire(ctx, job)
    queued = await ctx.repo.transition(
        job.id,
        expected=job.status,
        to=JobStatus.QUEUED,
        now=now,
        run_after=retry_at,
        attempts=attempts,
    )
    if queued is not None:
        log.info("job %d retries at +%.1fs: %s", job.id, delay, reason)
        await ctx.events.emit(JobDelayed(job=queued, at=now, reason=reason, retry_at=retry_at))
        ctx.on_requeue(queued)
    return None


# --- steps ------------------------------------------------------------------------------------


async def submit_step(ctx: RunContext, job: Job, interrupt: asyncio.Event) -> Job | None:
    now = ctx.clock.now()
    if past_deadline(job, now):
        return await expire(ctx, job)
    provider = ctx.providers.get(job.provider)
    if provider is None:
        return await end_job(
            ctx,
            job,
            JobStatus.FAILED,
            messages.REFUSED,
            f"The provider {job.provider} is no longer configured here. Please ask again.",
        )
    await ctx.events.emit(JobStarted(job=job, at=now))
    request = await build_request(ctx.repo, job)
    try:
        result = await before_deadline(ctx, job, provider.submit(request))
    except TimeoutError:
        log.warning("job %d: the deadline passed while submitting to %s", job.id, job.provider)
        return await expire(ctx, job, at_provider=True)
    except RateLimited as err:
        delay = err.retry_after or ctx.config.retry.delay(1, ctx.random())
        ctx.on_rate_limited(job.provider, delay)
        deadline = job.deadline_at
        waits_past = deadline is not None and ctx.clock.now() + delay >= deadline
        if err.retry_after is not None and waits_past:
            reason = messages.rate_limited(label_of(ctx, job.provider), delay)
            return await end_job(ctx, job, JobStatus.FAILED, messages.RATE_LIMITED, reason)
        return await requeue(
            ctx,
            job,
            delay=delay,
            reason="the provider asked us to slow down",
            attempts=job.attempts,
        )
    except (UpstreamError, ProviderTimeout) as err:
        if err.nothing_billed:
            return await submit_failed(ctx, job, err, request)
        # The provider may have started (and billed) it: never send it again.
        code, reason = messages.provider_failure(err, label_of(ctx, job.provider), retried=False)
        log.warning("job %d: %s failed once: %s (%s)", job.id, job.provider, err.code, err.detail)
        return await end_job(ctx, job, JobStatus.FAILED, code, reason)
    except ACCOUNT_ERRORS as err:
        if ctx.pauses is None or not ctx.pauses.enabled:
            return await fail_provider(ctx, job, err)
        await pause_and_requeue(ctx, job, err)
        return None
    except ProviderError as err:
        return await fail_provider(ctx, job, err)
    if ctx.pauses is not None:
        await ctx.pauses.accepted(job.provider)
    now = ctx.clock.now()
    if isinstance(result, Finished):
        ctx.on_provider_done(job.id)
    if isinstance(result, Submitted):
        running = await ctx.repo.transition(
            job.id,
            expected=JobStatus.SUBMITTING,
            to=JobStatus.RUNNING,
            now=now,
            provider_handle=result.handle,
        )
        if running is None:
            # Cancelled while we were submitting: nobody else knows this handle.
            await cancel_at_provider(ctx, job.provider, result.handle)
        return running
    if all(item.data is not None for item in result.outputs):
        # The bytes are in hand: keeping the outputs keeps the result, so there is nothing
        # to download after a crash and the job goes straight to delivery.
        images = await store_outputs(ctx, job, result)
        if images is None:
            return None
        delivering = await ctx.repo.transition(
            job.id,
            expected=JobStatus.SUBMITTING,
            to=JobStatus.DELIVERING,
            now=ctx.clock.now(),
            provider_handle=result.handle,
            credits=result.credits,
        )
        if delivering is None:
            return None
        return await deliver_step(ctx, delivering, interrupt, images)
    # URLs expire but downloading takes time: save the result first, so a crash from here
    # on downloads again and never submits (and bills) again.
    return await ctx.repo.transition(
        job.id,
        expected=JobStatus.SUBMITTING,
        to=JobStatus.DOWNLOADING,
        now=now,
        result_json=encode_finished(result),
        provider_handle=result.handle,
        credits=result.credits,
    )


async def submit_failed(
    ctx: RunContext, job: Job, err: ProviderError, request: GenerationRequest
) -> Job | None:
    """A transient submit failure with no handle: retry, then fall back, then give up."""
    attempts = job.attempts + 1
    policy = ctx.config.retry
    if attempts < policy.submit_attempts:
        return await requeue(
            ctx,
            job,
            delay=policy.delay(attempts, ctx.random()),
            reason=f"the provider failed ({err.code})",
            attempts=attempts,
        )
    route = await ctx.reroute(job, request)
    if route is not None:
        now = ctx.clock.now()
        moved = await ctx.repo.transition(
            job.id,
            expected=JobStatus.SUBMITTING,
            to=JobStatus.QUEUED,
            now=now,
            provider=route.provider,
            attempts=0,
            run_after=None,
            route_reason=route.reason,
        )
        if moved is not None:
            reason = (
                f"{label_of(ctx, job.provider)} is not answering, so your edit moved to "
                f"{label_of(ctx, route.provider)}."
            )
            log.warning("job %d falls back from %s to %s", job.id, job.provider, route.provider)
            await ctx.events.emit(
                JobFallback(
                    job=moved,
                    at=now,
                    from_provider=job.provider,
                    to_provider=route.provider,
                    reason=reason,
                )
            )
            ctx.on_requeue(moved)
        return None
    code = messages.TIMED_OUT if isinstance(err, ProviderTimeout) else messages.PROVIDER_DOWN
    reason = (
        messages.provider_failure(err, label_of(ctx, job.provider))[1]
        if code == messages.TIMED_OUT
        else messages.provider_down(label_of(ctx, job.provider))
    )
    return await end_job(ctx, job, JobStatus.FAILED, code, reason)


async def poll_step(ctx: RunContext, job: Job, interrupt: asyncio.Event) -> Job | None:
    provider = ctx.providers.get(job.provider)
    handle = job.provider_handle
    if provider is None or handle is None:
        return await end_job(ctx, job, JobStatus.FAILED, messages.INTERNAL, messages.internal())
    min_interval = provider.capabilities.min_poll_interval
    interval = min_interval
    ceiling = max(ctx.config.poll_max_interval, min_interval)
    policy = ctx.config.retry
    errors = 0
    last: tuple[str, float | None] | None = None
    while True:
        now = ctx.clock.now()
        if past_deadline(job, now):
            return await expire(ctx, job, at_provider=True)
        try:
            result = await before_deadline(ctx, job, provider.poll(handle))
        except TimeoutError:
            return await expire(ctx, job, at_provider=True)
        except (UpstreamError, ProviderTimeout, RateLimited) as err:
            errors += 1
            if errors > policy.poll_errors:
                code, reason = messages.provider_failure(err, label_of(ctx, job.provider))
                return await end_job(ctx, job, JobStatus.FAILED, code, reason)
            retry_after = err.retry_after if isinstance(err, RateLimited) else None
            delay = max(interval, retry_after or policy.delay(errors, ctx.random()))
            log.info("job %d: poll failed (%s), retry %d in %.1fs", job.id, err.code, errors, delay)
        except ACCOUNT_ERRORS as err:
            if ctx.pauses is None or not ctx.pauses.enabled:
                return await fail_provider(ctx, job, err)
            await record_pause(ctx, job, err)  # the provider has the job: keep asking, slowly
            delay = ceiling
        except ProviderError as err:
            return await fail_provider(ctx, job, err)
        else:
            errors = 0
            if isinstance(result, Finished):
                ctx.on_provider_done(job.id)
                return await ctx.repo.transition(
                    job.id,
                    expected=JobStatus.RUNNING,
                    to=JobStatus.DOWNLOADING,
                    now=ctx.clock.now(),
                    result_json=encode_finished(result),
                    credits=result.credits,
                )
            assert isinstance(result, Pending)
            if (result.status, result.progress) != last:
                last = (result.status, result.progress)
                await ctx.events.emit(
                    JobProgress(
                        job=job,
                        at=now,
                        status=result.status,
                        progress=result.progress,
                        eta_seconds=result.eta_seconds,
                    )
                )
            delay = interval
            interval = min(interval * ctx.config.poll_backoff, ceiling)
        now = ctx.clock.now()
        if job.deadline_at is not None:
            delay = min(delay, max(0.0, job.deadline_at - now))
        await ctx.park(delay, interrupt)
        if interrupt.is_set():
            interrupt.clear()
            current = await ctx.repo.get_job(job.id)
            if current is None or current.status is not JobStatus.RUNNING:
                return None  # cancelled (the canceller told the provider) or taken over


async def resume_running(ctx: RunContext, job: Job, interrupt: asyncio.Event) -> Job | None:
    if job.result_json is not None:
        return await ctx.repo.transition(
            job.id, expected=JobStatus.RUNNING, to=JobStatus.DOWNLOADING, now=ctx.clock.now()
        )
    if job.provider_handle is not None:
        return await poll_step(ctx, job, interrupt)
    return await end_job(ctx, job, JobStatus.FAILED, messages.INTERNAL, messages.internal())


async def download_step(ctx: RunContext, job: Job, interrupt: asyncio.Event) -> Job | None:
    ctx.on_provider_done(job.id)  # resumed after a crash: the provider has finished
    if job.result_json is None:
        return await end_job(ctx, job, JobStatus.FAILED, messages.INTERNAL, messages.internal())
    images = await store_outputs(ctx, job, decode_finished(job.result_json))
    if images is None:
        return None
    delivering = await ctx.repo.transition(
        job.id, expected=JobStatus.DOWNLOADING, to=JobStatus.DELIVERING, now=ctx.clock.now()
    )
    if delivering is None:
        return None
    return await deliver_step(ctx, delivering, interrupt, images)


async def store_outputs(ctx: RunContext, job: Job, finished: Finished) -> list[ResultImage] | None:
    """Download, check and keep the outputs; ``None`` when the job ended instead."""
    label = label_of(ctx, job.provider)
    block_nsfw: bool | None = None
    blocked = 0
    images: list[ResultImage] = []
    for index, item in enumerate(finished.outputs):
        if item.nsfw:
            if block_nsfw is None:
                settings = await ctx.repo.get_guild_settings(job.guild_id)
                block_nsfw = settings.nsfw_policy is NsfwPolicy.BLOCK
            if block_nsfw:
                blocked += 1
                continue
        try:
            data = item.data if item.data is not None else await fetch(ctx, job, item.url)
        except TimeoutError:
            log.warning("job %d: the deadline passed while downloading", job.id)
            await expire(ctx, job, at_provider=True)
            return None
        if not isinstance(data, bytes):
            reason = messages.download_failed(label, data)
            await end_job(ctx, job, JobStatus.FAILED, messages.DOWNLOAD_FAILED, reason)
            return None
        try:
            info = await ctx.validate(data)
        except Exception:
            log.warning("job %d: output %d is not a usable image", job.id, index, exc_info=True)
            reason = messages.bad_output(label)
            await end_job(ctx, job, JobStatus.FAILED, messages.BAD_OUTPUT, reason)
            return None
        output = await ctx.repo.add_output(
            job.id,
            index=index if item.index is None else item.index,
            data=info.data,
            format=info.format,
            width=info.width,
            height=info.height,
            nsfw=item.nsfw,
            now=ctx.clock.now(),
            retention_seconds=ctx.config.output_retention_seconds,
        )
        images.append(ResultImage(output=output, data=info.data))
    if images:
        return images
    if blocked:
        reason = (
            f"{label}'s safety filter flagged the result, and this server does not allow "
            "flagged images. Try a different image or prompt."
        )
        await end_job(ctx, job, JobStatus.MODERATED, messages.MODERATED, reason)
    else:
        await end_job(ctx, job, JobStatus.FAILED, messages.BAD_OUTPUT, messages.bad_output(label))
    return None


async def fetch(ctx: RunContext, job: Job, url: str | None) -> bytes | str | None:
    """The result's bytes, or why not (``None``: no reason to give). Retries what may work
    a second time; :class:`TimeoutError` when the job's deadline passes."""
    if url is None or ctx.fetcher is None:
        log.error("job %d: a result has no bytes and no way to fetch its URL", job.id)
        return None
    policy = ctx.config.retry
    why: str | None = None
    for attempt in range(1, policy.download_attempts + 1):
        try:
            return await before_deadline(
                ctx, job, ctx.fetcher.fetch(url, max_bytes=ctx.config.max_output_bytes)
            )
        except (DownloadRefused, DownloadFailed) as err:
            log.warning("job %d: download %d failed: %s", job.id, attempt, err.reason)
            why = result_problem(err)
            if not worth_retrying(err):
                return why
        except KontextError as err:
            log.warning("job %d: download %d failed: %s", job.id, attempt, err.code)
        if attempt < policy.download_attempts:
            await ctx.park(policy.delay(attempt, ctx.random()), None)
    return why


async def deliver_step(
    ctx: RunContext,
    job: Job,
    interrupt: asyncio.Event,
    images: list[ResultImage] | None = None,
) -> Job | None:
    if images is None:
        ctx.on_provider_done(job.id)
        images = []
        for output in await ctx.repo.outputs_for_job(job.id):
            data = await ctx.repo.get_blob(output.content_hash)
            if data is None:
                return await end_job(
                    ctx, job, JobStatus.FAILED, messages.INTERNAL, messages.internal()
                )
            images.append(ResultImage(output=output, data=data))
    policy = ctx.config.retry
    for attempt in range(1, policy.delivery_attempts + 1):
        try:
            await ctx.deliverer.deliver(job, images)
            break
        except Exception:
            log.warning("job %d: delivery %d failed", job.id, attempt, exc_info=True)
            if attempt == policy.delivery_attempts:
                return await end_job(
                    ctx,
                    job,
                    JobStatus.FAILED,
                    messages.DELIVERY_FAILED,
                    messages.delivery_failed(),
                )
            await ctx.park(policy.delay(attempt, ctx.random()), None)
    now = ctx.clock.now()
    done = await ctx.repo.transition(
        job.id, expected=JobStatus.DELIVERING, to=JobStatus.DONE, now=now
    )
    if done is None:
        return None
    await ctx.repo.record_usage(
        guild_id=done.guild_id,
        user_id=done.user_id,
        day=utc_day(now),
        jobs=1,
        images=len(images),
        credits=done.credits or 0.0,
        cost=done.cost or 0.0,
    )
    await ctx.events.emit(JobDone(job=done, at=now, images=tuple(images)))
    return done


Step = Callable[[RunContext, Job, asyncio.Event], Awaitable[Job | None]]

STEPS: dict[JobStatus, Step] = {
    JobStatus.SUBMITTING: submit_step,
    JobStatus.RUNNING: resume_running,
    JobStatus.DOWNLOADING: download_step,
    JobStatus.DELIVERING: deliver_step,
}


def steps_for(ctx: RunContext, job: Job) -> Mapping[JobStatus, Step]:
    """The steps of ``job``: a batch its provider makes one image at a time has its own."""
    # Imported here: the batch steps are built from this module's helpers.
    from .batch import SPLIT_STEPS, splits

    provider = ctx.providers.get(job.provider)
    if provider is not None and splits(job, provider.capabilities):
        return SPLIT_STEPS
    return STEPS


async def run_job(ctx: RunContext, job: Job, interrupt: asyncio.Event) -> None:
    """Drive a claimed (or reclaimed) job until it ends, goes back to the queue, or is lost."""
    bind_job(job)  # this task's log lines name the job
    current: Job | None = job
    try:
        while current is not None and not current.status.terminal:
            step = steps_for(ctx, current).get(current.status)
            if step is None:
                return
            current = await step(ctx, current, interrupt)
    except asyncio.CancelledError:
        raise
    except KontextError as err:
        log.warning("job %d stopped: %s", job.id, err.code)
        if current is not None:
            await _fail_latest(ctx, current.id, err.user_message)
    except Exception:
        log.exception("job %d crashed in the engine", job.id)
        if current is not None:
            await _fail_latest(ctx, current.id, messages.internal())


async def _fail_latest(ctx: RunContext, job_id: int, reason: str) -> None:
    latest = await ctx.repo.get_job(job_id)
    if latest is not None and not latest.status.terminal and latest.status is not JobStatus.QUEUED:
        await end_job(ctx, latest, JobStatus.FAILED, messages.INTERNAL, reason)
