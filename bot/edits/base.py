"""What every part of the edit service shares: storage, the engine, the providers' limits,
the clock, and the checks every request passes first (the server, the channel, the role)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from bot.access import check_can_request, check_same_server
from bot.blocklist import PromptBlocked, matching_rule
from bot.clock import Clock
from bot.creative.service import CreativeService
from bot.creative_models import BlockedPrompt
from bot.errors import BadRequest
from bot.i18n import language_for, t
from bot.jobs.errors import JobNotFound
from bot.jobs.requests import EditRequest, ReferenceInput
from bot.models import GuildSettings, Job, JobKind, JobParams, MessageRef, Output
from bot.providers.base import Capabilities
from storage.sql import Repository

from .inputs import Requester

log = logging.getLogger(__name__)

#: The largest id storage can hold (a signed 64-bit integer); a larger one names nothing.
MAX_ID = 2**63 - 1


class ImageGone(BadRequest, code="image_gone"):
    """The image a request is about is no longer kept (retention purged it, or it was
    deleted)."""


class DataDeleted(ImageGone, code="data_deleted"):
    """The job's prompt and images were deleted (retention, or the member erased their data):
    it can still be seen, never redone."""


def check_not_erased(job: Job) -> None:
    """Refuse to build on a job whose prompt and images were deleted."""
    if job.erased:
        raise DataDeleted(t("errors.edit.data_deleted", job_id=job.id))


class RefusalLog(Protocol):
    """Where refused requests are reported for moderators (the moderation log). It must
    return at once and never raise: the member's answer does not wait for it."""

    def prompt_blocked(self, refusal: BlockedPrompt) -> None: ...


class Engine(Protocol):
    """The part of the job engine the edit service uses."""

    async def submit(
        self, request: EditRequest, *, settings: GuildSettings | None = None
    ) -> Job: ...

    async def cancel(self, job_id: int, *, by_user_id: int, moderator: bool) -> Job: ...


@dataclass(kw_only=True, eq=False)
class EditBase:
    """Storage, the engine, the configured providers' capabilities, the bot's default
    provider and the clock: all the service works with, given by the composition root."""

    repo: Repository
    engine: Engine
    capabilities: Mapping[str, Capabilities]
    default_provider: str
    clock: Clock
    #: Styles, preferences and the server's creative settings: what a request resolves to.
    creative: CreativeService
    #: Told about every prompt the blocklist refuses (None: nobody).
    refusals: RefusalLog | None = None

    async def job(self, job_id: int) -> Job:
        job = await self.repo.get_job(job_id) if 0 < job_id <= MAX_ID else None
        if job is None:
            raise JobNotFound(t("errors.edit.job_gone", job_id=job_id))
        return job

    async def owned_job(self, who: Requester, job_id: int) -> Job:
        """Job ``job_id``, refused unless it belongs to the server ``who`` asks from."""
        job = await self.job(job_id)
        check_same_server(job, guild_id=who.guild_id)
        return job

    async def owned_output(self, who: Requester, output_id: int) -> tuple[Job, Output]:
        """An output and its job, refused unless they belong to ``who``'s server."""
        output = await self.repo.get_output(output_id) if 0 < output_id <= MAX_ID else None
        job = await self.repo.get_job(output.job_id) if output is not None else None
        if output is None or job is None:
            raise ImageGone(t("errors.edit.image_removed"))
        check_same_server(job, guild_id=who.guild_id)
        return job, output

    async def message_ref(self, message_id: int) -> MessageRef | None:
        """What the bot posted as ``message_id`` (a status or a result), if anything."""
        if not 0 < message_id <= MAX_ID:
            return None
        return await self.repo.lookup_message(message_id)

    async def guild_settings(self, guild_id: int) -> GuildSettings:
        return await self.repo.get_guild_settings(guild_id)

    async def allowed(self, who: Requester) -> GuildSettings:
        """The server's settings, once its channel and role rules admit ``who``."""
        settings = await self.repo.get_guild_settings(who.guild_id)
        check_can_request(
            settings,
            channel_id=who.channel_id,
            parent_channel_id=who.parent_channel_id,
            role_ids=who.role_ids,
        )
        return settings

    async def caps_for(self, settings: GuildSettings) -> Capabilities:
        name = settings.provider or self.default_provider
        caps = self.capabilities.get(name)
        if caps is None:
            raise BadRequest(t("errors.edit.server_provider_missing", name=repr(name)))
        return caps

    async def kept_bytes(self, content_hash: str) -> bytes:
        data = await self.repo.get_blob(content_hash)
        if data is None:
            raise ImageGone(t("errors.edit.images_expired"))
        return data

    async def submit(
        self,
        who: Requester,
        settings: GuildSettings,
        *,
        kind: JobKind,
        prompt: str,
        refs: tuple[ReferenceInput, ...],
        params: JobParams,
        parent_output_id: int | None = None,
        reply_to_message_id: int | None = None,
        provider: str | None = None,
    ) -> Job:
        """Queue a job through the engine (which refuses limits, quotas and blocked
        prompts); ``provider`` is the member's choice, else the server's. The job records the
        language of its public messages: the server's pinned one, else its locale."""
        language = language_for(settings.language, who.guild_locale)
        params = params.model_copy(update={"language": language})
        request = EditRequest(
            **who.fields_for(EditRequest),
            kind=kind,
            prompt=prompt,
            params=params,
            provider=provider or settings.provider,
            parent_output_id=parent_output_id,
            reply_to_message_id=reply_to_message_id,
            images=refs,
        )
        try:
            job = await self.engine.submit(request, settings=settings)
        except PromptBlocked:
            try:
                await self._report_blocked(request)
            except Exception:  # the log is for moderators; the member's answer comes first
                log.exception("could not report a blocked prompt in guild %d", who.guild_id)
            raise
        log.info("job %d queued (%s) in guild %d", job.id, kind.value, who.guild_id)
        return job

    async def _report_blocked(self, request: EditRequest) -> None:
        """Tell the moderation log which request the blocklist refused, and by which rule."""
        if self.refusals is None:
            return
        rules = (await self.repo.get_creative_settings(request.guild_id)).blocklist
        self.refusals.prompt_blocked(
            BlockedPrompt(
                guild_id=request.guild_id,
                channel_id=request.channel_id,
                user_id=request.user_id,
                kind=request.kind,
                prompt=request.prompt,
                rule=matching_rule(request.prompt, rules),
            )
        )
