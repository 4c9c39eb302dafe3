"""Drives a claimed job through its steps until it ends, waits in the queue, or is lost.

A batch its provider makes one image at a time (:mod:`bot.jobs.batch`) has steps of its own;
every other job takes the normal steps (:mod:`bot.jobs.runner`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping

from bot.errors import KontextError
from bot.i18n import Text
from bot.logcontext import bind_job
from bot.models import Job, JobStatus

from . import messages
from .batch import SPLIT_STEPS, splits
from .context import RunContext, Step, end_job
from .runner import STEPS

log = logging.getLogger(__name__)


def steps_for(ctx: RunContext, job: Job) -> Mapping[JobStatus, Step]:
    """The steps of ``job``: a batch its provider makes one image at a time has its own."""
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
            await _fail_latest(ctx, current.id, err.text)
    except Exception:
        log.exception("job %d crashed in the engine", job.id)
        if current is not None:
            await _fail_latest(ctx, current.id, messages.internal())


async def _fail_latest(ctx: RunContext, job_id: int, reason: Text | str) -> None:
    latest = await ctx.repo.get_job(job_id)
    if latest is not None and not latest.status.terminal and latest.status is not JobStatus.QUEUED:
        await end_job(ctx, latest, JobStatus.FAILED, messages.INTERNAL, reason)
