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

from bot.errors import KontextError
from bot.i18n import Text
from bot.media import DownloadFailed, DownloadRefused, result_problem, worth_retrying
from bot.models import Job, JobStatus, NsfwPolicy
from bot.providers.base import (
    Finished,
    GenerationRequest,
    Pending,
    Submitted,
)
from bot.providers.errors import (
    ProviderError,
    ProviderTimeout,
    RateLimited,
    UpstreamError,
)

from . import messages
from .attachments import fetch_attachments
from .context import (
    PollPace,
    RunContext,
    Step,
    before_deadline,
    cancel_at_provider,
    end_job,
    expire,
    fail_provider,
    keep_result,
    label_of,
    move,
    past_deadline,
    pause_and_requeue,
    record_pause,
    requeue,
    wait_to_poll,
)
from .events import (
    JobDone,
    JobFallback,
    JobProgress,
    JobStarted,
    ResultImage,
)
from .limits import utc_day
from .pausing import ACCOUNT_ERRORS
from .stored import build_request, decode_finished

log = logging.getLogger(__name__)


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
            messages.not_configured(job.provider),
        )
    await ctx.events.emit(JobStarted(job=job, at=now))
    ready = await fetch_attachments(ctx, job, provider.capabilities)
    if ready is None or ready.status.terminal:
        return ready  # an attachment refused (the job failed), or the job changed under us
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
            reason=messages.slow_down(),
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
        running = await move(ctx, job, JobStatus.RUNNING, now=now, provider_handle=result.handle)
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
        delivering = await move(
            ctx,
            job,
            JobStatus.DELIVERING,
            expected=JobStatus.SUBMITTING,
            provider_handle=result.handle,
            credits=result.credits,
        )
        if delivering is None:
            return None
        return await deliver_step(ctx, delivering, interrupt, images)
    # URLs expire but downloading takes time: save the result first, so a crash from here
    # on downloads again and never submits (and bills) again.
    return await keep_result(
        ctx, job, result, expected=JobStatus.SUBMITTING, now=now, provider_handle=result.handle
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
            reason=messages.failed_for_now(err.code),
            attempts=attempts,
        )
    route = await ctx.reroute(job, request)
    if route is not None:
        now = ctx.clock.now()
        moved = await move(  # from SUBMITTING, the status this step runs in
            ctx,
            job,
            JobStatus.QUEUED,
            now=now,
            provider=route.provider,
            attempts=0,
            run_after=None,
            **route.columns(),
        )
        if moved is not None:
            reason = messages.moved(label_of(ctx, job.provider), label_of(ctx, route.provider))
            log.warning("job %d falls back from %s to %s", job.id, job.provider, route.provider)
            await ctx.events.emit(
                JobFallback(
                    job=moved,
                    at=now,
                    from_provider=job.provider,
                    to_provider=route.provider,
                    reason_text=reason,
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
    pace = PollPace.start(ctx, provider)
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
            delay = max(pace.interval, retry_after or policy.delay(errors, ctx.random()))
            log.info("job %d: poll failed (%s), retry %d in %.1fs", job.id, err.code, errors, delay)
        except ACCOUNT_ERRORS as err:
            if ctx.pauses is None or not ctx.pauses.enabled:
                return await fail_provider(ctx, job, err)
            await record_pause(ctx, job, err)  # the provider has the job: keep asking, slowly
            delay = pace.ceiling
        except ProviderError as err:
            return await fail_provider(ctx, job, err)
        else:
            errors = 0
            if isinstance(result, Finished):
                ctx.on_provider_done(job.id)
                return await keep_result(ctx, job, result, expected=JobStatus.RUNNING)
            assert isinstance(result, Pending)
            if (result.status, result.progress) != last:
                last = (result.status, result.progress)
                progress = JobProgress(job=job, at=now, **result.fields_for(JobProgress))
                await ctx.events.emit(progress)
            delay = pace.after_answer()
        if not await wait_to_poll(ctx, job, delay, interrupt):
            return None  # cancelled (the canceller told the provider) or taken over


async def resume_running(ctx: RunContext, job: Job, interrupt: asyncio.Event) -> Job | None:
    if job.result_json is not None:
        return await move(ctx, job, JobStatus.DOWNLOADING, expected=JobStatus.RUNNING)
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
    delivering = await move(ctx, job, JobStatus.DELIVERING, expected=JobStatus.DOWNLOADING)
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
        await end_job(ctx, job, JobStatus.MODERATED, messages.MODERATED, messages.flagged(label))
    else:
        await end_job(ctx, job, JobStatus.FAILED, messages.BAD_OUTPUT, messages.bad_output(label))
    return None


async def fetch(ctx: RunContext, job: Job, url: str | None) -> bytes | Text | None:
    """The result's bytes, or why not (``None``: no reason to give). Retries what may work
    a second time; :class:`TimeoutError` when the job's deadline passes."""
    if url is None or ctx.fetcher is None:
        log.error("job %d: a result has no bytes and no way to fetch its URL", job.id)
        return None
    policy = ctx.config.retry
    why: Text | None = None
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
    done = await move(ctx, job, JobStatus.DONE, expected=JobStatus.DELIVERING, now=now)
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


STEPS: dict[JobStatus, Step] = {
    JobStatus.SUBMITTING: submit_step,
    JobStatus.RUNNING: resume_running,
    JobStatus.DOWNLOADING: download_step,
    JobStatus.DELIVERING: deliver_step,
}
