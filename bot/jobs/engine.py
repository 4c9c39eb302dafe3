"""The job engine: persist requests, dispatch them fairly to providers, recover after crashes.

One dispatcher task per provider keeps its slots busy: whenever a slot frees or work is queued
it claims as many jobs as it has free slots (storage picks them fairly: guilds, then users
inside a guild, take turns) and starts one worker task per job. Only a low-frequency safety
look for work queued by other processes runs on a timer. All waiting goes through `Parking`
(bot.jobs.parking), which records what each task waits for, so `run_until_idle` can move a
ManualClock to the next wake-up once every task is parked: tests never really sleep.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import logging
import random
import uuid
from collections import deque
from collections.abc import Callable, Mapping, Sequence

from bot.clock import Clock, ManualClock, SystemClock
from bot.i18n import t
from bot.media import Downloader
from bot.models import ACTIVE_STATUSES, GuildSettings, Job, JobOrigin, JobStatus, NewJob
from bot.providers.base import Provider
from storage.base import DatabaseFault, LimitExceeded
from storage.sql import Repository

from . import messages
from .batch import cancel_items
from .context import RunContext, announce_pause, cancel_at_provider, end_job
from .driver import run_job
from .errors import AlreadyFinished, JobNotFound, NotAllowed
from .events import EventBus, EventSink, JobCancelled, JobQueued
from .intake import checked_params, community_limits, store_references
from .lanes import ActiveJob, Lane, build_lane
from .leases import Leases
from .limits import (
    EngineConfig,
    check_daily_credits,
    queue_eta,
    typical_duration,
    word_refusal,
)
from .parking import Parking
from .pausing import LanePauses
from .requests import Deliverer, EditRequest, OutputValidator, probe_output
from .routing import Router
from .shared import SharedQueue

log = logging.getLogger(__name__)

_EWMA = 0.2  # weight of the newest sample in moving averages
_CANCELLABLE = (JobStatus.QUEUED, JobStatus.SUBMITTING, JobStatus.RUNNING, JobStatus.DOWNLOADING)


class JobEngine:
    """Runs edit requests from any front end through the providers.

    ``providers`` maps registry names to providers; ``deliverer`` posts results (idempotent
    per job). ``fetcher`` downloads result URLs; ``validate_output`` checks result bytes
    (default: a Pillow probe in a thread).
    """

    def __init__(
        self,
        repo: Repository,
        providers: Mapping[str, Provider],
        deliverer: Deliverer,
        *,
        clock: Clock | None = None,
        config: EngineConfig | None = None,
        fetcher: Downloader | None = None,
        sinks: Sequence[EventSink] = (),
        worker_id: str | None = None,
        validate_output: OutputValidator | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.repo = repo
        self.clock: Clock = clock or SystemClock()
        self.config = config or EngineConfig()
        self.worker_id = worker_id or f"w-{uuid.uuid4().hex[:12]}"
        self.events = EventBus(sinks)
        self._providers = dict(providers)
        self._rng = rng or random.Random()
        self._lanes: dict[str, Lane] = {
            name: build_lane(name, provider, self.config, self.clock, shared=repo.multi_process)
            for name, provider in self._providers.items()
        }
        fallback = self.config.fallback_provider
        if fallback is not None and fallback not in self._providers:
            log.warning("fallback provider %s is not configured: no fallback", fallback)
        self._parking = Parking(self.clock)
        self.router = Router(
            self._providers, repo, self.concurrency, self._typical_seconds, fallback=fallback
        )
        self.pauses = LanePauses(self._lanes)  # see bot.jobs.pausing
        self._ctx = RunContext(
            repo=repo,
            providers=self._providers,
            clock=self.clock,
            config=self.config,
            events=self.events,
            deliverer=deliverer,
            fetcher=fetcher,
            validate=validate_output or probe_output,
            random=self._rng.random,
            park=self._parking.park,
            on_requeue=self._requeued,
            on_rate_limited=self._rate_limited,
            on_provider_done=self._provider_done,
            reroute=self.router.fallback,
            pauses=self.pauses,
        )
        self._active: dict[int, ActiveJob] = {}
        self._deadlines: list[tuple[float, int]] = []
        self._deadline_wake = asyncio.Event()
        self._typical: dict[str, tuple[float, float]] = {}  # provider: (value, computed at)
        self._shared = None
        if repo.multi_process:
            spawn, interrupt = self._parking.spawn, self._interrupt
            self._shared = SharedQueue(self._ctx, self._lanes, spawn, interrupt, self.worker_id)
        self._leases = Leases(
            repo,
            self.clock,
            worker_id=self.worker_id,
            lease_seconds=self.config.lease_seconds,
            park=self._parking.park,
            held=self._held,
            resume=self._resume,
        )
        self._started = False
        self._stopping = False
        #: Seconds from a slot freeing to the next job starting (for the benchmark).
        self.dispatch_latencies: deque[float] = deque(maxlen=200_000)

    # --- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Resume what a dead worker left (once its lease expired), then start dispatching."""
        if self._started:
            return
        self._started = True
        self._stopping = False
        if self._shared is not None:
            await self._shared.start()  # before looking at storage: nothing is missed
        await self._leases.reclaim()
        queued = await self.repo.list_jobs(statuses=[JobStatus.QUEUED], limit=1_000_000)
        for job in queued:
            self._watch_deadline(job)
        for lane in self._lanes.values():
            self._parking.spawn(self._dispatch(lane), f"dispatch-{lane.name}")
        self._parking.spawn(self._leases.keep(lambda: not self._stopping), "maintain")
        self._parking.spawn(self._sweep_deadlines(), "deadlines")
        log.info("job engine %s started with %s", self.worker_id, ", ".join(self._lanes))

    async def stop(self) -> None:
        """Stop every task. Jobs in flight keep their status and are resumed by the next start
        (their leases are released so that happens at once)."""
        self._stopping = True
        if self._shared is not None:
            await self._shared.stop()
        active = list(self._active)
        tasks = list(self._parking.tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for lane in self._lanes.values():
            while lane.ready:
                job = lane.ready.popleft()
                with contextlib.suppress(Exception):
                    await self.repo.transition(
                        job.id,
                        expected=JobStatus.SUBMITTING,
                        to=JobStatus.QUEUED,
                        now=self.clock.now(),
                    )
        if active:
            with contextlib.suppress(Exception):
                await self.repo.heartbeat(
                    worker_id=self.worker_id,
                    job_ids=active,
                    now=self.clock.now(),
                    lease_seconds=0.0,
                )
        self._started = False
        log.info("job engine %s stopped", self.worker_id)

    async def __aenter__(self) -> JobEngine:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def started(self) -> bool:
        return self._started and not self._stopping

    # --- front-end API -----------------------------------------------------------------------

    def provider_names(self) -> list[str]:
        return list(self._providers)

    def running(self, provider: str | None = None) -> int:
        """Jobs this engine is working on (all providers, or one)."""
        if provider is not None:
            lane = self._lanes.get(provider)
            return lane.gate.running if lane else 0
        return len(self._active)

    def concurrency(self, provider: str) -> int:
        return self._lanes[provider].gate.concurrency

    async def submit(self, request: EditRequest, *, settings: GuildSettings | None = None) -> Job:
        """Validate against the provider, persist (limits checked in the same transaction),
        announce ``queued`` (and ``paused``). Raises LimitReached, UnknownProvider,
        UnsupportedRequest or PromptBlocked (nothing queued). ``settings``: the guild's, when
        the caller has just read them."""
        now = self.clock.now()
        settings = settings or await self.repo.get_guild_settings(request.guild_id)
        await check_daily_credits(self.repo, settings, now)
        route = await self.router.route(request, settings, self.config.default_provider)
        name, lane = route.provider, self._lanes[route.provider]
        params = checked_params(request, settings, lane.provider)
        limits = await community_limits(self.repo, request, settings)
        references = await store_references(self.repo, request, now)
        new_job = NewJob(
            **request.fields_for(JobOrigin, exclude=frozenset({"params"})),
            params=params,
            provider=name,
            model=settings.model,
            references=references,
            deadline_at=now + self.config.deadline_seconds,
            **route.columns(),
        )
        try:
            job = await self.repo.enqueue(new_job, now=now, limits=limits)
        except LimitExceeded as err:
            raise await self._refusal(err, request, name, now) from err
        self._watch_deadline(job)
        position = await self.repo.queue_position(job.id)
        typical = await self._typical_seconds(name)
        eta = queue_eta(position or 1, lane.gate.concurrency, typical)
        await self.events.emit(JobQueued(job=job, at=now, position=position, eta_seconds=eta))
        await announce_pause(self._ctx, job)
        lane.wake.set()
        return job

    async def cancel(self, job_id: int, *, by_user_id: int, moderator: bool = False) -> Job:
        """Cancel a job before delivery: the requester or a moderator only."""
        job = await self.repo.get_job(job_id)
        if job is None:
            raise JobNotFound(t("errors.job.not_found_check", job_id=job_id))
        if not moderator and job.user_id != by_user_id:
            raise NotAllowed(t("errors.job.cancel_not_owner"))
        if self._shared is not None:
            self._shared.cancelling(job_id)
        for _ in range(3):
            if job.status.terminal:
                raise AlreadyFinished(
                    t("errors.job.finished", job_id=job_id, status=job.status.value)
                )
            if job.status is JobStatus.DELIVERING:
                raise AlreadyFinished(t("errors.job.posting", job_id=job_id))
            now = self.clock.now()
            by_moderator = moderator and job.user_id != by_user_id
            cancelled = await self.repo.transition(
                job_id,
                expected=job.status,
                to=JobStatus.CANCELLED,
                now=now,
                error_code=messages.CANCELLED,
                **messages.stored(messages.cancelled(by_moderator=by_moderator)),
            )
            if cancelled is not None:
                break
            latest = await self.repo.get_job(job_id)
            if latest is None:
                raise JobNotFound(t("errors.job.not_found", job_id=job_id))
            job = latest
        else:
            raise AlreadyFinished(t("errors.job.changing", job_id=job_id))
        tell = self._shared is None or self._shared.canceller_tells_provider(job)
        if job.provider_handle and job.status is JobStatus.RUNNING and tell:
            await cancel_at_provider(self._ctx, job.provider, job.provider_handle)
        if tell:
            await cancel_items(self._ctx, job)  # a batch's requests accepted so far
        self._interrupt(job_id)
        log.info("job %d cancelled by %d (was %s)", job_id, by_user_id, job.status.value)
        await self.events.emit(JobCancelled(job=cancelled, at=now, by_user_id=by_user_id))
        return cancelled

    async def get_job(self, job_id: int) -> Job | None:
        return await self.repo.get_job(job_id)

    async def set_status_message(
        self, job_id: int, *, message_id: int, thread_id: int | None = None
    ) -> Job | None:
        """Remember the message that shows a job's status (and its thread), for restarts."""
        fields: dict[str, object] = {"status_message_id": message_id}
        if thread_id is not None:
            fields["thread_id"] = thread_id
        return await self.repo.update_job(job_id, now=self.clock.now(), **fields)

    async def queue_eta(self, job: Job) -> tuple[int | None, float | None]:
        """Current queue position and ETA of a queued job (for status refreshes)."""
        lane = self._lanes.get(job.provider)
        position = await self.repo.queue_position(job.id)
        if position is None or lane is None:
            return position, None
        typical = await self._typical_seconds(job.provider)
        return position, queue_eta(position, lane.gate.concurrency, typical)

    async def run_until_idle(
        self,
        *,
        advance: Callable[[float], None] | None = None,
        max_seconds: float | None = None,
    ) -> None:
        """Drain mode: return once nothing is queued or in flight.

        When every engine task is parked and work remains, time is moved to the earliest
        wake-up with ``advance`` (default: ``clock.set`` of a ManualClock; with the real clock
        the timers simply fire). Raises RuntimeError past ``max_seconds`` of clock time.
        """
        if not self._started:
            raise RuntimeError("start() the engine first")
        if advance is None and isinstance(self.clock, ManualClock):
            advance = self.clock.set
        limit = self.clock.now() + (
            max_seconds
            if max_seconds is not None
            else 2 * self.config.deadline_seconds + 4 * self.config.lease_seconds
        )
        await self._parking.drain(self._idle, advance=advance, until=limit)

    async def _idle(self) -> bool:
        if self._active:
            return False
        if await self.repo.count_queued() > 0:
            return False
        return await self.repo.count_running() == 0

    # --- internals: dispatch -----------------------------------------------------------------

    async def _dispatch(self, lane: Lane) -> None:
        gate = lane.gate
        while not self._stopping:
            lane.wake.clear()
            self._start_ready(lane)
            wanted = lane.claim_count()
            releases, lane.releases = lane.releases, []
            if wanted <= 0 and self._shared is not None:
                self._shared.release_apart(releases)
            elif wanted > 0:
                began = self.clock.monotonic()
                try:
                    jobs = await self.repo.claim(
                        worker_id=self.worker_id,
                        provider=lane.name,
                        now=self.clock.now(),
                        lease_seconds=self.config.lease_seconds,
                        limit=wanted,
                        account=lane.account,
                        release=releases,
                    )
                except Exception as err:
                    quiet = isinstance(err, DatabaseFault)  # it says what broke and what to do
                    log.error("claiming for %s failed: %s", lane.name, err, exc_info=not quiet)
                    jobs = []
                    if self._shared is not None:
                        self._shared.release_apart(releases)
                    await self._parking.park(self.config.safety_poll_seconds, lane.wake)
                lane.claim_seconds += _EWMA * (self.clock.monotonic() - began - lane.claim_seconds)
                lane.ready.extend(jobs)
                self._start_ready(lane)
                if jobs and len(jobs) == wanted:
                    continue
            now = self.clock.now()
            while lane.due and lane.due[0] <= now:
                heapq.heappop(lane.due)
            timeout = self.config.safety_poll_seconds
            if lane.due:
                timeout = min(timeout, lane.due[0] - now)
            rate_wait = gate.next_at()
            if rate_wait is None and self._shared is not None and gate.admissible():
                rate_wait = await self._shared.account_wait(lane) or None
            if rate_wait is not None:
                timeout = min(timeout, rate_wait)
            await self._parking.park(max(timeout, 1e-3), lane.wake)

    def _start_ready(self, lane: Lane) -> None:
        """Start claimed jobs while slots (and the rate) allow."""
        while lane.ready and lane.gate.admissible() > 0:
            lane.gate.bucket.take()
            self._start_worker(lane, lane.ready.popleft())

    def _start_worker(self, lane: Lane, job: Job) -> None:
        if job.id in self._active:
            return
        interrupt = asyncio.Event()
        lane.gate.running += 1
        task = self._parking.spawn(self._work(lane, job, interrupt), f"job-{job.id}")
        self._active[job.id] = ActiveJob(
            task=task, interrupt=interrupt, lane=lane, began=self.clock.monotonic()
        )

    async def _work(self, lane: Lane, job: Job, interrupt: asyncio.Event) -> None:
        if lane.freed:
            self.dispatch_latencies.append(self.clock.monotonic() - lane.freed.popleft())
        try:
            await run_job(self._ctx, job, interrupt)
        finally:
            self._provider_done(job.id)
            self._active.pop(job.id, None)
            lane.wake.set()  # the guild's running count dropped too: its next job may go

    def _provider_done(self, job_id: int) -> None:
        """Free the job's provider slot: downloading and delivering do not use the provider,
        so the next job may start while this one finishes."""
        active = self._active.get(job_id)
        if active is None or not active.holds_slot:
            return
        active.holds_slot = False
        lane = active.lane
        held = self.clock.monotonic() - active.began
        lane.hold_seconds = (
            held
            if lane.hold_seconds is None
            else lane.hold_seconds + _EWMA * (held - lane.hold_seconds)
        )
        lane.gate.running -= 1
        if self._shared is not None:
            self._shared.release(lane, job_id, claiming=not self._stopping)
        if not self._stopping:
            lane.freed.append(self.clock.monotonic())
            if len(lane.freed) > lane.gate.concurrency:
                lane.freed.popleft()
            self._start_ready(lane)
        lane.wake.set()

    def _requeued(self, job: Job) -> None:
        lane = self._lanes.get(job.provider)
        if lane is None:
            return
        if job.run_after is not None:
            heapq.heappush(lane.due, job.run_after)
        lane.wake.set()

    def _rate_limited(self, provider: str, seconds: float) -> None:
        lane = self._lanes.get(provider)
        if lane is not None:
            lane.gate.bucket.block_for(seconds)
        if self._shared is not None:
            self._parking.spawn(self._shared.block(provider, seconds), f"block-{provider}")

    # --- internals: recovery, leases, deadlines ----------------------------------------------

    def _held(self) -> list[int]:
        """The jobs this engine works on or has claimed to start."""
        return [*self._active, *(j.id for lane in self._lanes.values() for j in lane.ready)]

    async def _resume(self, job: Job) -> None:
        lane = self._lanes.get(job.provider)
        self._watch_deadline(job)
        if job.status is JobStatus.SUBMITTING:
            # No handle was saved: submit again, through the gate like any queued job.
            queued = await self.repo.transition(
                job.id, expected=JobStatus.SUBMITTING, to=JobStatus.QUEUED, now=self.clock.now()
            )
            if queued is not None:
                log.info("job %d resumed: submitting again", job.id)
                self._requeued(queued)
            return
        if job.status not in ACTIVE_STATUSES:
            return
        if lane is None:
            log.error("job %d needs provider %s, which is not configured", job.id, job.provider)
            return
        log.info("job %d resumed in %s", job.id, job.status.value)
        self._start_worker(lane, job)

    def _interrupt(self, job_id: int) -> bool:
        """Stop a job this engine holds (its worker re-reads it); False if it holds none."""
        active = self._active.get(job_id)
        if active is not None:
            active.interrupt.set()
        return self._take_ready(job_id) is not None or active is not None

    def _take_ready(self, job_id: int) -> Job | None:
        """Remove a claimed job that has not started yet from its lane's buffer."""
        for lane in self._lanes.values():
            for job in lane.ready:
                if job.id == job_id:
                    lane.ready.remove(job)
                    lane.wake.set()
                    return job
        return None

    def _watch_deadline(self, job: Job) -> None:
        if job.deadline_at is None:
            return
        heapq.heappush(self._deadlines, (job.deadline_at, job.id))
        if self._deadlines[0][1] == job.id:
            self._deadline_wake.set()

    async def _sweep_deadlines(self) -> None:
        """Expire queued jobs at their deadline; nudge workers whose job is past it."""
        while not self._stopping:
            self._deadline_wake.clear()
            now = self.clock.now()
            due: list[int] = []
            while self._deadlines and self._deadlines[0][0] <= now:
                due.append(heapq.heappop(self._deadlines)[1])
            for job_id in due:
                try:
                    await self._expire_due(job_id)
                except Exception:
                    log.exception("expiring job %d failed", job_id)
            timeout = self._deadlines[0][0] - now if self._deadlines else None
            if not due:
                await self._parking.park(timeout, self._deadline_wake)

    async def _expire_due(self, job_id: int) -> None:
        active = self._active.get(job_id)
        if active is not None:
            active.interrupt.set()
            return
        job = self._take_ready(job_id) or await self.repo.get_job(job_id)
        if job is None or job.status not in (JobStatus.QUEUED, JobStatus.SUBMITTING):
            return
        if job.status is JobStatus.SUBMITTING and job.lease_owner != self.worker_id:
            return  # another worker's: it expires the job when it starts it
        if await end_job(
            self._ctx,
            job,
            JobStatus.EXPIRED,
            messages.EXPIRED,
            messages.expired(self.config.deadline_seconds),
        ):
            await cancel_items(self._ctx, job)  # a batch waiting to retry: stop its requests

    # --- internals: estimates and refusals ---------------------------------------------------

    async def _typical_seconds(self, provider: str) -> float:
        now = self.clock.now()
        cached = self._typical.get(provider)
        if cached is not None and now - cached[1] < 60:
            return cached[0]
        durations = await self.repo.recent_durations(provider)
        value = typical_duration(durations, self.config.default_job_seconds)
        self._typical[provider] = (value, now)
        return value

    async def _refusal(
        self, err: LimitExceeded, request: EditRequest, provider: str, now: float
    ) -> Exception:
        return await word_refusal(
            self.repo,
            err,
            guild_id=request.guild_id,
            user_id=request.user_id,
            typical=await self._typical_seconds(provider),
            provider_slots=self._lanes[provider].gate.concurrency,
            now=now,
        )
