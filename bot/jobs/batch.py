"""Batches a provider makes one image per request: one job, ``count`` provider requests.

A provider that returns several images per request (AIML API ``num_images``) gets the whole
batch in one request and runs through the ordinary steps. Any other provider gets one request
per image, each with its own seed, inside the one job: the job holds one provider slot, counts
``count`` times against the limits (storage's ``image_count``), and is delivered once, when
every request has finished or failed.

Each request is a row in ``batch_items``, written before the side effect it allows, like the
job itself: an accepted request's handle is saved at once, so a restart polls it and never
submits it again; a failed request keeps its reason, so the delivery can say which images
failed and why while keeping the others. The combined result is saved like any provider
result, each image carrying its number, and downloaded and delivered by the ordinary steps.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence

from bot.creative_models import BatchFailure, BatchItem, BatchItemStatus, BatchReport
from bot.i18n import Text
from bot.models import Job, JobStatus
from bot.providers.base import Capabilities, Finished, OutputImage, Provider, Submitted
from bot.providers.errors import ProviderError, ProviderTimeout, RateLimited, UpstreamError
from storage.sql import Repository

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
    keep_result,
    label_of,
    move,
    past_deadline,
    requeue,
    wait_to_poll,
)
from .events import JobProgress, JobStarted
from .runner import STEPS
from .stored import build_request, decode_finished, encode_finished

log = logging.getLogger(__name__)

#: Random seeds are drawn below this (every provider takes 32-bit seeds).
_SEED_SPAN = 2**31 - 1
NO_IMAGE = "no_image"


def splits(job: Job, caps: Capabilities) -> bool:
    """Whether ``job`` is a batch its provider cannot make in one request."""
    return job.params.num_images > 1 and job.params.num_images > caps.max_num_images


def batch_seeds(
    count: int, caps: Capabilities, base: int | None, random: Callable[[], float]
) -> list[int | None]:
    """A different seed per image: ``base``, ``base + 1``… when one was chosen (so a batch can
    be repeated), else random; none where the provider takes no seed."""
    if not caps.seed:
        return [None] * count
    top = min(caps.max_seed, _SEED_SPAN)
    if base is not None:
        return [(base - 1 + i) % caps.max_seed + 1 for i in range(count)]
    seeds: list[int | None] = []
    while len(seeds) < count:
        seed = 1 + int(random() * top)
        if seed not in seeds:
            seeds.append(seed)
    return seeds


async def _fail_item(
    ctx: RunContext, job: Job, item: BatchItem, code: str, reason: Text | str
) -> BatchItem | None:
    log.info("job %d: image %d failed (%s)", job.id, item.index + 1, code)
    return await ctx.repo.update_batch_item(
        job.id,
        item.index,
        now=ctx.clock.now(),
        status=BatchItemStatus.FAILED,
        error_code=code,
        **messages.stored(reason),
    )


async def cancel_items(ctx: RunContext, job: Job) -> None:
    """Tell the provider to stop every request of the batch still running."""
    for item in await ctx.repo.batch_items(job.id):
        if item.status is BatchItemStatus.RUNNING and item.provider_handle:
            await cancel_at_provider(ctx, job.provider, item.provider_handle)


async def _expire(ctx: RunContext, job: Job, *, at_provider: bool = True) -> Job | None:
    ended = await expire(ctx, job, at_provider=at_provider)
    if ended is not None:
        await cancel_items(ctx, job)
    return ended


def _fits(ctx: RunContext, job: Job, delay: float) -> bool:
    """Whether a retry after ``delay`` comes before the job's deadline."""
    return job.deadline_at is None or ctx.clock.now() + delay < job.deadline_at


async def _fail_pending(ctx: RunContext, job: Job, code: str, reason: Text) -> None:
    """No more submits fit before the deadline: the images not yet asked for fail."""
    for item in await ctx.repo.batch_items(job.id):
        if item.status is BatchItemStatus.PENDING:
            await _fail_item(ctx, job, item, code, reason)


async def submit_batch(ctx: RunContext, job: Job, interrupt: asyncio.Event) -> Job | None:
    """Submit every image not yet accepted; then the job runs (polled per image)."""
    now = ctx.clock.now()
    if past_deadline(job, now):
        return await _expire(ctx, job, at_provider=False)
    provider = ctx.providers[job.provider]
    caps = provider.capabilities
    seeds = batch_seeds(job.params.num_images, caps, job.params.seed, ctx.random)
    items = await ctx.repo.init_batch_items(job.id, seeds, now=now)
    await ctx.events.emit(JobStarted(job=job, at=now))
    ready = await fetch_attachments(ctx, job, caps)
    if ready is None or ready.status.terminal:
        return ready  # an attachment refused (the job failed), or the job changed under us
    request = await build_request(ctx.repo, job)
    label = label_of(ctx, job.provider)
    policy = ctx.config.retry
    attempts = job.attempts
    for item in items:
        if item.status is not BatchItemStatus.PENDING:
            continue  # accepted (or ended) before: never submitted twice
        if interrupt.is_set():  # cancelled or past the deadline: submit no more
            interrupt.clear()
            current = await ctx.repo.get_job(job.id)
            if current is None or current.status is not JobStatus.SUBMITTING:
                await cancel_items(ctx, job)  # including any accepted after the cancel
                return None
            if past_deadline(current, ctx.clock.now()):
                return await _expire(ctx, current)
        one = request.model_copy(update={"num_images": 1, "seed": item.seed})
        try:
            result = await before_deadline(ctx, job, provider.submit(one))
        except TimeoutError:
            return await _expire(ctx, job)
        except RateLimited as err:
            delay = err.retry_after or policy.delay(1, ctx.random())
            ctx.on_rate_limited(job.provider, delay)
            if not _fits(ctx, job, delay):  # keep what was accepted; the rest cannot be made
                reason = messages.rate_limited(label, delay)
                await _fail_pending(ctx, job, messages.RATE_LIMITED, reason)
                break
            reason = messages.slow_down()
            return await requeue(ctx, job, delay=delay, reason=reason, attempts=attempts)
        except (UpstreamError, ProviderTimeout) as err:
            attempts += 1
            delay = policy.delay(attempts, ctx.random())
            if attempts < policy.submit_attempts and _fits(ctx, job, delay):
                reason = messages.failed_for_now(err.code)
                return await requeue(ctx, job, delay=delay, reason=reason, attempts=attempts)
            await _fail_item(ctx, job, item, *messages.provider_failure(err, label))
            continue
        except ProviderError as err:
            await _fail_item(ctx, job, item, *messages.provider_failure(err, label))
            continue
        if isinstance(result, Submitted):
            fields: dict[str, object] = {
                "status": BatchItemStatus.RUNNING,
                "provider_handle": result.handle,
            }
        else:
            fields = {"status": BatchItemStatus.DONE, "result_json": encode_finished(result)}
        await ctx.repo.update_batch_item(job.id, item.index, now=ctx.clock.now(), **fields)
    running = await move(ctx, job, JobStatus.RUNNING, expected=JobStatus.SUBMITTING)
    if running is None:
        await cancel_items(ctx, job)  # cancelled while submitting: only we know the handles
    return running


async def _poll_item(
    ctx: RunContext, provider: Provider, job: Job, item: BatchItem, errors: dict[int, int]
) -> float | None:
    """Poll one request; returns its progress (0..1) while it runs, else ``None``."""
    assert item.provider_handle is not None
    label = label_of(ctx, job.provider)
    try:
        result = await before_deadline(ctx, job, provider.poll(item.provider_handle))
    except (UpstreamError, ProviderTimeout, RateLimited) as err:
        errors[item.index] = errors.get(item.index, 0) + 1
        if errors[item.index] > ctx.config.retry.poll_errors:
            await _fail_item(ctx, job, item, *messages.provider_failure(err, label))
            return None
        return 0.0
    except ProviderError as err:
        await _fail_item(ctx, job, item, *messages.provider_failure(err, label))
        return None
    errors[item.index] = 0
    if isinstance(result, Finished):
        await ctx.repo.update_batch_item(
            job.id,
            item.index,
            now=ctx.clock.now(),
            status=BatchItemStatus.DONE,
            result_json=encode_finished(result),
        )
        return None
    return result.progress or 0.0


async def poll_batch(ctx: RunContext, job: Job, interrupt: asyncio.Event) -> Job | None:
    """Poll every running image until all have finished or failed, then combine them."""
    provider = ctx.providers[job.provider]
    pace = PollPace.start(ctx, provider)
    errors: dict[int, int] = {}
    last: tuple[str, float] | None = None
    while True:
        now = ctx.clock.now()
        if past_deadline(job, now):
            return await _expire(ctx, job)
        items = await ctx.repo.batch_items(job.id)
        running = [i for i in items if i.status is BatchItemStatus.RUNNING]
        if not running:
            return await _combine(ctx, job, items)
        try:
            progress = [await _poll_item(ctx, provider, job, item, errors) for item in running]
        except TimeoutError:
            return await _expire(ctx, job)
        ended = len(items) - len(running) + sum(p is None for p in progress)
        if ended == len(items):
            continue  # the last ones just finished: combine at once
        share = (ended + sum(p for p in progress if p is not None)) / len(items)
        status = f"{ended} of {len(items)} images finished"
        if (status, share) != last:
            last = (status, share)
            await ctx.events.emit(JobProgress(job=job, at=now, status=status, progress=share))
        if not await wait_to_poll(ctx, job, pace.after_answer(), interrupt):
            return None  # cancelled (the canceller stopped the requests) or taken over


async def _combine(ctx: RunContext, job: Job, items: Sequence[BatchItem]) -> Job | None:
    """Every request has ended: save the images (numbered) for download, or end the job."""
    outputs: list[OutputImage] = []
    credits: float | None = None
    for item in items:
        if item.status is not BatchItemStatus.DONE or item.result_json is None:
            continue
        finished = decode_finished(item.result_json)
        if finished.credits is not None:
            credits = (credits or 0.0) + finished.credits
        if not finished.outputs:
            label = label_of(ctx, job.provider)
            await _fail_item(ctx, job, item, NO_IMAGE, messages.bad_output(label))
            continue
        outputs.append(finished.outputs[0].model_copy(update={"index": item.index}))
    ctx.on_provider_done(job.id)
    if not outputs:
        failed = [i for i in await ctx.repo.batch_items(job.id) if i.error_code]
        code = failed[0].error_code if failed else messages.INTERNAL
        reason = failed[0].failure_text() if failed else messages.internal()
        moderated = bool(failed) and all(i.error_code == messages.MODERATED for i in failed)
        status = JobStatus.MODERATED if moderated else JobStatus.FAILED
        return await end_job(ctx, job, status, code or messages.INTERNAL, reason)
    combined = Finished(outputs=tuple(outputs), credits=credits)
    return await keep_result(ctx, job, combined, expected=JobStatus.RUNNING)


SPLIT_STEPS: dict[JobStatus, Step] = {
    **STEPS,
    JobStatus.SUBMITTING: submit_batch,
    JobStatus.RUNNING: poll_batch,
}


async def batch_report(repo: Repository, job: Job) -> BatchReport:
    """Which images of ``job`` exist and which failed, and why (for the delivery and Info).

    An image with no output and no recorded failure was not returned, or was held back by
    the server's safety setting: it is reported as such."""
    count = job.params.num_images
    delivered = tuple(sorted(o.number for o in await repo.outputs_for_job(job.id)))
    reasons: dict[int, tuple[str, Text | str]] = {
        i.index + 1: (i.error_code or messages.INTERNAL, i.failure_text())
        for i in await repo.batch_items(job.id)
        if i.status is BatchItemStatus.FAILED
    }
    failed: list[BatchFailure] = []
    if job.status is JobStatus.DONE:
        for number in range(1, count + 1):
            if number in delivered:
                continue
            code, reason = reasons.get(number, (NO_IMAGE, messages.no_image()))
            failed.append(BatchFailure(number=number, code=code, text=reason))
    return BatchReport(job_id=job.id, count=count, delivered=delivered, failed=tuple(failed))
