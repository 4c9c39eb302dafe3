"""What the engine tells front ends about a job, as frozen values.

A sink is any ``async def sink(event: JobEvent) -> None``. Sinks are awaited in order, in the
task that produced the event (so a job's events arrive in lifecycle order); keep them quick
(hand slow Discord edits to a task of your own). A sink that raises is logged and skipped:
it never breaks the engine.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Literal, Protocol

from pydantic import Field, InstanceOf

from bot.i18n import Text, render
from bot.models import Frozen, Job, Output

log = logging.getLogger(__name__)


class ResultImage(Frozen):
    """One delivered output with its bytes."""

    output: Output
    data: bytes = Field(repr=False)


class JobEvent(Frozen):
    kind: str
    job: Job
    at: float  # epoch seconds, from the engine's clock


class JobQueued(JobEvent):
    kind: Literal["queued"] = "queued"
    position: int | None  # 1-based among the provider's queued jobs (an estimate)
    eta_seconds: float | None  # until the job should be finished


class JobStarted(JobEvent):
    kind: Literal["started"] = "started"


class JobProgress(JobEvent):
    kind: Literal["progress"] = "progress"
    status: str  # the provider's word, e.g. "processing"
    progress: float | None = None  # 0..1
    eta_seconds: float | None = None


class ReasonedEvent(JobEvent):
    """An event that says why, for the requester: ``reason_text`` is worded in the reader's
    language by the front end (``bot.i18n.render``); ``reason`` is it in English."""

    reason_text: InstanceOf[Text] | str

    @property
    def reason(self) -> str:
        return render(self.reason_text)


class JobDelayed(ReasonedEvent):
    """Waiting to try again (rate limit or a transient provider failure)."""

    kind: Literal["delayed"] = "delayed"
    retry_at: float


class JobFallback(ReasonedEvent):
    kind: Literal["fallback"] = "fallback"
    from_provider: str
    to_provider: str


class JobDone(JobEvent):
    kind: Literal["done"] = "done"
    images: tuple[ResultImage, ...]


class JobFailed(ReasonedEvent):
    """Ended as ``failed`` or ``moderated``; the reason (also stored with the job:
    ``Job.failure_text``) is written for the requester."""

    kind: Literal["failed"] = "failed"
    code: str


class JobCancelled(JobEvent):
    kind: Literal["cancelled"] = "cancelled"
    by_user_id: int


class JobExpired(ReasonedEvent):
    kind: Literal["expired"] = "expired"


class JobPaused(ReasonedEvent):
    """Back in the queue because the provider refused the bot's account (a bad key, no
    credits): the provider is paused for everyone until it works again, and the operator has
    been told. The reason is written for the requester."""

    kind: Literal["paused"] = "paused"
    provider: str
    code: str  # "auth" or "credits"
    operator_told: bool = True


class EventSink(Protocol):
    async def __call__(self, event: JobEvent) -> None: ...


class EventBus:
    """Fans events out to sinks, isolating the engine from their failures."""

    def __init__(self, sinks: Sequence[EventSink] = ()) -> None:
        self._sinks: list[EventSink] = list(sinks)

    def add(self, sink: EventSink) -> None:
        self._sinks.append(sink)

    def remove(self, sink: EventSink) -> None:
        self._sinks.remove(sink)

    async def emit(self, event: JobEvent) -> None:
        for sink in tuple(self._sinks):
            try:
                await sink(event)
            except Exception:
                log.exception("event sink failed on %s for job %d", event.kind, event.job.id)
