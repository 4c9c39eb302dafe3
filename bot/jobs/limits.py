"""Engine configuration and the wording of limit refusals.

Per-provider concurrency and rate default to what each provider module declares in its
:class:`~bot.providers.base.Capabilities` (the account's documented entry tier: WaveSpeed's
default tier runs 2 at once and 2 per minute, ModelsLab's entry plan queues 5 at once; AIML API
documents no figure, so its module declares a conservative default). Deployments override
them with ``<PROVIDER>_CONCURRENCY`` and ``<PROVIDER>_RATE_PER_MINUTE`` (read by
:meth:`bot.config.Settings.provider_limits` into :attr:`EngineConfig.providers`). On PostgreSQL
these are account limits that every process sharing the database holds together.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from pydantic import Field

from bot.config import Settings
from bot.creative_models import Tier
from bot.durations import duration_text
from bot.i18n import t
from bot.models import ACTIVE_STATUSES, Frozen, GuildSettings
from bot.providers.base import Capabilities
from storage.base import AccountLimits, EnqueueLimits, LimitExceeded, LimitKind
from storage.sql import Repository

from .errors import LimitReached


class ProviderLimits(Frozen):
    """Overrides for one provider; ``None`` keeps the provider's declared default."""

    concurrency: int | None = Field(default=None, ge=1)
    rate_per_minute: float | None = Field(default=None, gt=0)
    burst: int | None = Field(default=None, ge=1)


class JobRetryPolicy(Frozen):
    """How often, and how patiently, transient failures are tried again."""

    submit_attempts: int = Field(default=3, ge=1)  # submits that failed transiently
    poll_errors: int = Field(default=6, ge=0)  # consecutive failed polls tolerated
    download_attempts: int = Field(default=3, ge=1)
    delivery_attempts: int = Field(default=3, ge=1)
    base_delay: float = Field(default=2.0, ge=0)
    max_delay: float = Field(default=60.0, ge=0)
    jitter: float = Field(default=0.25, ge=0, le=1)  # ± this share of the delay

    def delay(self, attempt: int, rand: float) -> float:
        """Backoff before try ``attempt + 1`` (``attempt`` >= 1); ``rand`` is in [0, 1)."""
        base = min(self.max_delay, self.base_delay * 2.0 ** max(0, attempt - 1))
        return max(0.0, base * (1 + self.jitter * (2 * rand - 1)))


class EngineConfig(Frozen):
    default_provider: str = "aimlapi"
    fallback_provider: str | None = None
    deadline_seconds: float = Field(default=600.0, gt=0)
    lease_seconds: float = Field(default=30.0, gt=0)
    providers: dict[str, ProviderLimits] = Field(default_factory=dict)
    retry: JobRetryPolicy = JobRetryPolicy()
    poll_max_interval: float = Field(default=10.0, gt=0)
    poll_backoff: float = Field(default=1.5, ge=1)
    #: Jobs claimed ahead per provider, started the moment a slot frees. None adapts it:
    #: enough to hide a claim's round trip when jobs are very short, none when they take
    #: seconds (a job claimed ahead can no longer be overtaken by a newly arriving guild)
    #: or when the provider is rate-limited.
    prefetch: int | None = Field(default=None, ge=0)
    #: A low-frequency look at storage for work queued by other processes (a safety net:
    #: on PostgreSQL they announce it through the database).
    safety_poll_seconds: float = Field(default=15.0, gt=0)
    #: Jobs of one provider this process works on at once; None: up to the account's
    #: concurrency. Several workers sharing an account each take part of it.
    worker_concurrency: int | None = Field(default=None, ge=1)
    output_retention_seconds: float | None = 30 * 86400.0
    max_output_bytes: int = 50 * 1024 * 1024
    #: Used for ETAs until a provider has finished jobs to learn from.
    default_job_seconds: float = Field(default=30.0, gt=0)

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: object) -> EngineConfig:
        retention = settings.retention_days * 86400.0 if settings.retention_days else None
        limits = {
            name: ProviderLimits(concurrency=concurrency, rate_per_minute=rate)
            for name, (concurrency, rate) in settings.provider_limits().items()
        }
        values: dict[str, object] = {
            "providers": limits,
            "default_provider": settings.provider,
            "fallback_provider": settings.fallback_provider,
            "deadline_seconds": settings.job_deadline_seconds,
            "output_retention_seconds": retention,
        }
        values.update(overrides)
        return cls.model_validate(values)

    def provider_concurrency(self, caps: Capabilities) -> int:
        override = self.providers.get(caps.name)
        if override is not None and override.concurrency is not None:
            return override.concurrency
        return caps.default_concurrency

    def account(self, caps: Capabilities) -> AccountLimits:
        """The provider account's limits, as every process sharing it must hold them."""
        rate, burst = self.provider_rate(caps)
        return AccountLimits(
            concurrency=self.provider_concurrency(caps), rate_per_minute=rate, burst=burst
        )

    def provider_rate(self, caps: Capabilities) -> tuple[float | None, int]:
        """Submits per minute (``None``: unlimited) and the burst the bucket holds."""
        override = self.providers.get(caps.name) or ProviderLimits()
        rate = override.rate_per_minute or caps.default_rate_per_minute
        burst = override.burst or max(1, min(self.provider_concurrency(caps), int(rate or 1)))
        return rate, burst


def enqueue_limits(settings: GuildSettings, tier: Tier | None = None) -> EnqueueLimits:
    """The guild's limits, raised by the member's best role tier (see bot.creative)."""
    active, quota = settings.max_user_active, settings.daily_quota
    if tier is not None:
        active, quota = tier.apply(active, quota)
    return EnqueueLimits(
        max_user_active=active,
        max_guild_queue=settings.max_guild_queue,
        daily_quota=quota or None,
        max_guild_running=settings.max_guild_running,
    )


def typical_duration(durations: Sequence[float], default: float) -> float:
    """The median of recent run times: robust to the odd very slow job."""
    return statistics.median(durations) if durations else default


def queue_eta(position: int, slots: int, typical: float) -> float:
    """Seconds until a job at ``position`` (1-based) should finish, ``slots`` running at once."""
    return math.ceil(position / max(1, slots)) * typical


def seconds_to_utc_midnight(now: float) -> float:
    moment = datetime.fromtimestamp(now, tz=UTC)
    midnight = (moment + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return midnight.timestamp() - now


def utc_day(now: float) -> str:
    return datetime.fromtimestamp(now, tz=UTC).strftime("%Y-%m-%d")


def limit_refusal(
    err: LimitExceeded,
    *,
    now: float,
    user_frees_in: float | None,
    queue_frees_in: float | None,
) -> LimitReached:
    """Word a storage refusal: which limit, and when it frees up."""
    if err.limit is LimitKind.DAILY_QUOTA:
        wait = seconds_to_utc_midnight(now)
        resets = duration_text(wait, round_up=True)
        if err.requested > 1 and err.current < err.maximum:
            message = t(
                "errors.limit.quota_batch",
                requested=err.requested,
                left=err.maximum - err.current,
                maximum=err.maximum,
                wait=resets,
            )
        else:
            message = t("errors.limit.quota", maximum=err.maximum, wait=resets)
        return LimitReached(
            message,
            limit=err.limit,
            retry_in=wait,
        )
    if err.limit is LimitKind.USER_ACTIVE and err.requested > 1:
        free = max(0, err.maximum - err.current)
        return LimitReached(
            t(
                "errors.limit.active_batch",
                requested=err.requested,
                current=err.current,
                maximum=err.maximum,
                free=free,
            ),
            limit=err.limit,
            retry_in=user_frees_in,
        )
    if err.limit is LimitKind.USER_ACTIVE:
        return LimitReached(
            t(
                "errors.limit.active_in",
                current=err.current,
                maximum=err.maximum,
                wait=duration_text(user_frees_in, round_up=True),
            )
            if user_frees_in is not None
            else t("errors.limit.active", current=err.current, maximum=err.maximum),
            limit=err.limit,
            retry_in=user_frees_in,
        )
    return LimitReached(
        t(
            "errors.limit.queue_in",
            maximum=err.maximum,
            wait=duration_text(queue_frees_in, round_up=True),
        )
        if queue_frees_in is not None
        else t("errors.limit.queue", maximum=err.maximum),
        limit=err.limit,
        retry_in=queue_frees_in,
    )


async def word_refusal(
    repo: Repository,
    err: LimitExceeded,
    *,
    guild_id: int,
    user_id: int,
    typical: float,
    provider_slots: int,
    now: float,
) -> LimitReached:
    """Estimate when the limit frees up (from ``typical`` job seconds) and word it."""
    user_frees_in: float | None = None
    queue_frees_in: float | None = None
    if err.limit is LimitKind.USER_ACTIVE:
        mine = await repo.list_jobs(
            guild_id=guild_id, user_id=user_id, statuses=list(ACTIVE_STATUSES)
        )
        starts = [j.started_at or j.updated_at for j in mine]
        if starts:
            user_frees_in = max(min(starts) + typical - now, 1.0)
    elif err.limit is LimitKind.GUILD_QUEUE:
        settings = await repo.get_guild_settings(guild_id)
        slots = max(1, min(settings.max_guild_running, provider_slots))
        queue_frees_in = typical / slots
    return limit_refusal(err, now=now, user_frees_in=user_frees_in, queue_frees_in=queue_frees_in)


async def check_daily_credits(repo: Repository, settings: GuildSettings, now: float) -> None:
    """Refuse when the guild has spent its daily credit cap (from the usage ledger)."""
    cap = settings.daily_credit_cap
    if not cap:
        return
    spent = sum(
        r.credits for r in await repo.usage(guild_id=settings.guild_id, since_day=utc_day(now))
    )
    if spent >= cap:
        wait = seconds_to_utc_midnight(now)
        raise LimitReached(
            t(
                "errors.limit.credits",
                cap=f"{cap:g}",
                spent=f"{spent:g}",
                wait=duration_text(wait, round_up=True),
            ),
            limit=LimitKind.DAILY_CREDITS,
            retry_in=wait,
        )
