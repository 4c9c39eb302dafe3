"""Prometheus metrics, one registry per process object (never the library's global one).

Job counts and timings come from the engine's events (:meth:`Metrics.on_event` is an event
sink); queue depth, jobs in flight, pauses and spend are read when scraped
(:meth:`Metrics.refresh`). The Discord edge reports REST 429s and gateway latency through
:meth:`Metrics.discord_rate_limited` and :meth:`Metrics.gateway_latency`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from bot.jobs.events import (
    JobCancelled,
    JobDone,
    JobEvent,
    JobExpired,
    JobFailed,
    JobStarted,
)
from storage.sql import Repository

log = logging.getLogger(__name__)

CONTENT_TYPE = CONTENT_TYPE_LATEST
#: Seconds, from a quick synchronous edit to a long queue.
_WAIT_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600)
_RUN_BUCKETS = (1, 2, 5, 10, 20, 30, 60, 120, 300, 600)


class Metrics:
    def __init__(self, repo: Repository, providers: Iterable[str]) -> None:
        self.repo = repo
        self.providers = tuple(providers)
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.jobs = Counter(
            "kontext_jobs", "Finished jobs by final status.", ["status", "provider"], registry=r
        )
        self.queue_depth = Gauge(
            "kontext_queue_depth", "Jobs waiting, per provider.", ["provider"], registry=r
        )
        self.in_flight = Gauge(
            "kontext_jobs_in_flight", "Jobs this process is working on.", registry=r
        )
        self.wait = Histogram(
            "kontext_job_wait_seconds",
            "From queued to the first claim.",
            ["provider"],
            buckets=_WAIT_BUCKETS,
            registry=r,
        )
        self.provider_duration = Histogram(
            "kontext_job_run_seconds",
            "From the (last) claim to delivered, for jobs that succeeded.",
            ["provider"],
            buckets=_RUN_BUCKETS,
            registry=r,
        )
        self.paused = Gauge(
            "kontext_provider_paused", "1 while a provider is paused.", ["provider"], registry=r
        )
        self.spend_credits = Gauge(
            "kontext_spend_credits",
            "Credits the provider reported for delivered jobs (all time).",
            ["provider"],
            registry=r,
        )
        self.spend_cost = Gauge(
            "kontext_spend_cost",
            "Cost the provider reported for delivered jobs (all time).",
            ["provider"],
            registry=r,
        )
        self.rest_429 = Counter(
            "kontext_discord_rest_429", "Discord REST answers 429 (rate limited).", registry=r
        )
        self.gateway_latency_seconds = Gauge(
            "kontext_gateway_latency_seconds", "Gateway heartbeat latency.", ["shard"], registry=r
        )
        self._in_flight_source: Callable[[], int] | None = None
        self._paused_source: Callable[[str], bool] | None = None
        for name in self.providers:
            self.queue_depth.labels(provider=name)
            self.paused.labels(provider=name)

    # --- sources and edge hooks --------------------------------------------------------------
    def watch(self, *, in_flight: Callable[[], int], paused: Callable[[str], bool]) -> None:
        """Where the scrape reads jobs in flight and pause states (the engine)."""
        self._in_flight_source = in_flight
        self._paused_source = paused

    def discord_rate_limited(self) -> None:
        """The Discord edge got a 429 from the REST API."""
        self.rest_429.inc()

    def gateway_latency(self, shard: int, seconds: float) -> None:
        """The Discord edge's latest heartbeat latency of a shard."""
        self.gateway_latency_seconds.labels(shard=str(shard)).set(seconds)

    # --- events ------------------------------------------------------------------------------
    async def on_event(self, event: JobEvent) -> None:
        job = event.job
        if isinstance(event, JobStarted):
            if job.attempts == 0:
                self.wait.labels(provider=job.provider).observe(max(0.0, event.at - job.created_at))
            return
        if not isinstance(event, JobDone | JobFailed | JobCancelled | JobExpired):
            return
        self.jobs.labels(status=job.status.value, provider=job.provider).inc()
        took = None if job.started_at is None else max(0.0, event.at - job.started_at)
        if isinstance(event, JobDone) and took is not None:
            self.provider_duration.labels(provider=job.provider).observe(took)
        log.info(
            "job %d finished: %s",
            job.id,
            job.status.value,
            extra={"duration_seconds": took, "status": job.status.value},
        )

    # --- scrape ------------------------------------------------------------------------------
    async def refresh(self) -> None:
        """Read the numbers that live in storage and in the engine."""
        depths = await self.repo.queue_depths()
        for name in {*self.providers, *depths}:
            self.queue_depth.labels(provider=name).set(depths.get(name, 0))
        for name, (credits, cost) in (await self.repo.spend_by_provider()).items():
            self.spend_credits.labels(provider=name).set(credits)
            self.spend_cost.labels(provider=name).set(cost)
        if self._in_flight_source is not None:
            self.in_flight.set(self._in_flight_source())
        if self._paused_source is not None:
            for name in self.providers:
                self.paused.labels(provider=name).set(1 if self._paused_source(name) else 0)

    async def render(self) -> bytes:
        await self.refresh()
        return generate_latest(self.registry)
