"""Reading and configuring: a job's details, the queue, usage, the server's settings, remix
channels and the gallery. Everything is returned as data; front ends word it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from bot.access import check_can_configure
from bot.errors import BadRequest
from bot.i18n import t
from bot.jobs.routing import allowed_providers
from bot.models import GuildSettings, Job, JobStatus, RemixChannel, UsageRow

from .base import EditBase
from .inputs import Requester, provider_and_model, result_seed

QUEUE_SHOWN = 10  # waiting jobs listed by /kontext queue
MAX_STYLE_SUFFIX = 300
_UNFINISHED = [s for s in JobStatus if not s.terminal]


@dataclass(frozen=True)
class JobInfo:
    """Everything needed to reproduce or trace one job's output."""

    job: Job
    provider_label: str
    model: str | None
    seed: int | None
    duration: float | None
    chain: tuple[tuple[int, str], ...]  # (job id, prompt) from the root to this job
    reference_count: int


@dataclass(frozen=True)
class QueueSnapshot:
    """The asker's unfinished jobs and the server's waiting line, with queue positions."""

    mine: tuple[tuple[Job, int | None], ...]
    waiting: tuple[tuple[Job, int | None], ...]
    queued: int
    running: int


@dataclass(frozen=True)
class UsageReport:
    rows: tuple[UsageRow, ...]
    since_day: str  # ISO date
    user_id: int | None  # set when only the asker's usage was asked for


class Admin(EditBase):
    async def info(self, who: Requester, job_id: int) -> JobInfo:
        job = await self.owned_job(who, job_id)
        outputs = await self.repo.outputs_for_job(job_id)
        chain: tuple[tuple[int, str], ...] = ()
        if outputs:
            chain = tuple((j.id, j.prompt) for j, _ in await self.repo.lineage(outputs[0].id))
        references = await self.repo.get_references(job_id)
        duration = job.finished_at - job.started_at if job.finished_at and job.started_at else None
        label, model = provider_and_model(self.capabilities, job)
        return JobInfo(
            job=job,
            provider_label=label,
            model=model,
            seed=result_seed(job),
            duration=duration,
            chain=chain,
            reference_count=len(references),
        )

    async def queue(self, who: Requester) -> QueueSnapshot:
        mine = await self.repo.list_jobs(
            guild_id=who.guild_id, user_id=who.user_id, statuses=_UNFINISHED, limit=20
        )
        waiting = await self.repo.list_jobs(
            guild_id=who.guild_id, statuses=[JobStatus.QUEUED], limit=QUEUE_SHOWN
        )
        positions = {j.id: await self.repo.queue_position(j.id) for j in (*mine, *waiting)}
        in_line = sorted(
            ((j, positions[j.id]) for j in waiting), key=lambda jp: (jp[1] or 1 << 30, jp[0].id)
        )
        return QueueSnapshot(
            mine=tuple((j, positions[j.id]) for j in mine),
            waiting=tuple(in_line),
            queued=await self.repo.count_queued(guild_id=who.guild_id),
            running=await self.repo.count_running(guild_id=who.guild_id),
        )

    async def usage(self, who: Requester, *, days: int, only_me: bool) -> UsageReport:
        since = (datetime.fromtimestamp(self.clock.now(), UTC) - timedelta(days=days - 1)).date()
        user_id = who.user_id if only_me else None
        rows = await self.repo.usage(
            guild_id=who.guild_id, since_day=since.isoformat(), user_id=user_id
        )
        return UsageReport(rows=tuple(rows), since_day=since.isoformat(), user_id=user_id)

    async def update_settings(self, who: Requester, changes: Mapping[str, Any]) -> GuildSettings:
        """Apply ``changes`` (only the options given) after checking Manage Server."""
        check_can_configure(manage_guild=who.manage_guild)
        current = await self.repo.get_guild_settings(who.guild_id)
        if not changes:
            return current
        provider = changes.get("provider")
        if provider is not None and provider not in self.capabilities:
            known = ", ".join(sorted(self.capabilities))
            raise BadRequest(t("errors.edit.unknown_provider", name=repr(provider), known=known))
        if isinstance(changes.get("providers"), str):
            changes = {
                **changes,
                "providers": allowed_providers(changes["providers"], self.capabilities),
            }
        try:
            updated = GuildSettings.model_validate({**current.model_dump(), **changes})
        except ValueError as err:
            raise BadRequest(t("errors.edit.bad_settings", error=str(err))) from err
        await self.repo.save_guild_settings(updated, now=self.clock.now())
        return updated

    async def remix_channel(self, channel_id: int, parent_id: int | None) -> RemixChannel | None:
        """The remix channel ``channel_id`` is, or is a thread of."""
        found = await self.repo.get_remix_channel(channel_id)
        if found is None and parent_id is not None:
            found = await self.repo.get_remix_channel(parent_id)
        return found

    async def add_remix_channel(
        self, who: Requester, channel_id: int, style_suffix: str | None
    ) -> RemixChannel:
        check_can_configure(manage_guild=who.manage_guild)
        suffix = (style_suffix or "").strip() or None
        if suffix is not None and len(suffix) > MAX_STYLE_SUFFIX:
            raise BadRequest(
                t("errors.edit.suffix_too_long", length=len(suffix), limit=MAX_STYLE_SUFFIX)
            )
        channel = RemixChannel(guild_id=who.guild_id, channel_id=channel_id, style_suffix=suffix)
        await self.repo.add_remix_channel(channel, now=self.clock.now())
        return channel

    async def remove_remix_channel(self, who: Requester, channel_id: int) -> bool:
        check_can_configure(manage_guild=who.manage_guild)
        return await self.repo.remove_remix_channel(who.guild_id, channel_id)

    async def list_remix_channels(self, guild_id: int) -> Sequence[RemixChannel]:
        return await self.repo.list_remix_channels(guild_id)

    async def set_gallery(self, who: Requester, channel_id: int | None) -> GuildSettings:
        return await self.update_settings(who, {"gallery_channel_id": channel_id})

    async def set_modlog(self, who: Requester, channel_id: int | None) -> GuildSettings:
        """Log finished, failed and blocked requests in ``channel_id`` (None: stop)."""
        return await self.update_settings(who, {"modlog_channel_id": channel_id})
