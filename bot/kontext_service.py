"""The service behind every Discord command and button, in plain values (no discord import).

A cog turns an interaction into a :class:`Requester` plus a few strings and numbers, calls one
method here, and renders what comes back. Everything that can be refused is refused here,
before anything is queued: an empty or too long prompt, too many images for the provider, an
attachment that is too large or not an image, a channel or role the guild excluded. The
engine then refuses limits and quotas (``LimitReached``) without writing anything.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from bot import render
from bot.access import check_can_configure, check_can_iterate, check_can_manage, check_can_request
from bot.clock import Clock
from bot.errors import KontextError
from bot.images import MAX_IMAGE_BYTES, ImageRejected, PreparedImage, prepare_image
from bot.jobs.errors import JobNotFound
from bot.jobs.requests import EditRequest, ReferenceInput, sniff_mime
from bot.models import (
    MAX_PROMPT_LENGTH,
    AspectRatio,
    GuildSettings,
    Job,
    JobKind,
    JobParams,
    JobStatus,
    MessageKind,
    ReferenceSource,
)
from bot.providers.base import Capabilities
from storage.base import Repository

log = logging.getLogger(__name__)

MAX_SEED = 2**31 - 1
QUEUE_SHOWN = 10  # waiting jobs listed by /kontext queue
_UNFINISHED = [s for s in JobStatus if not s.terminal]


class BadRequest(KontextError):
    code = "bad_request"


class Engine(Protocol):
    """The part of the job engine the Discord front end uses."""

    async def submit(self, request: EditRequest) -> Job: ...

    async def cancel(self, job_id: int, *, by_user_id: int, moderator: bool) -> Job: ...


@dataclass(frozen=True)
class Requester:
    """Who asks, and where: read off an interaction by the cog."""

    guild_id: int  # 0 in DMs
    channel_id: int  # where the command ran (a thread, if it ran in one)
    user_id: int
    parent_channel_id: int | None = None  # the thread's parent channel
    thread_id: int | None = None  # set when the command ran inside a thread
    role_ids: tuple[int, ...] = ()
    moderator: bool = False  # Manage Messages in the channel
    manage_guild: bool = False


@dataclass(frozen=True)
class ImageInput:
    """An attachment as Discord describes it, and how to download its bytes.

    ``read`` is given by the front end (Discord: the attachment's own download, through the
    bot's session), so this service never deals with URLs it would have to vet.
    """

    url: str
    filename: str
    size: int
    read: Callable[[], Awaitable[bytes]] = field(repr=False)
    message_id: int | None = None
    attachment_id: int | None = None


def random_seed() -> int:
    return secrets.randbelow(MAX_SEED) + 1


class KontextService:
    def __init__(
        self,
        *,
        repo: Repository,
        engine: Engine,
        capabilities: Mapping[str, Capabilities],
        default_provider: str,
        clock: Clock,
    ) -> None:
        self.repo = repo
        self.engine = engine
        self.capabilities = capabilities
        self.default_provider = default_provider
        self.clock = clock

    # --- reading ------------------------------------------------------------------------

    def provider_label(self, name: str) -> str:
        caps = self.capabilities.get(name)
        return caps.label if caps else name

    def describe(self, job: Job) -> tuple[str, str | None]:
        return provider_and_model(self.capabilities, job)

    async def guild_settings(self, guild_id: int) -> GuildSettings:
        return await self.repo.get_guild_settings(guild_id)

    async def job(self, job_id: int) -> Job:
        job = await self.repo.get_job(job_id)
        if job is None:
            raise JobNotFound(f"Job {job_id} no longer exists (it may have been purged).")
        return job

    async def caps_for(self, settings: GuildSettings) -> Capabilities:
        name = settings.provider or self.default_provider
        caps = self.capabilities.get(name)
        if caps is None:
            raise BadRequest(
                f"This server is set to use the provider {name!r}, which this bot does not "
                "have. An admin can pick another one with `/kontext settings`."
            )
        return caps

    # --- new jobs -----------------------------------------------------------------------

    async def edit(
        self,
        who: Requester,
        prompt: str,
        images: Sequence[ImageInput],
        *,
        aspect_ratio: AspectRatio | None = None,
        seed: int | None = None,
    ) -> Job:
        """``/edit`` and the "Edit image" menu: validate everything, then queue."""
        prompt = self._check_prompt(prompt)
        settings = await self.allowed(who)
        caps = await self.caps_for(settings)
        if not images:
            raise BadRequest("Attach at least one image to edit (PNG, JPEG or WebP).")
        if len(images) > caps.max_references:
            raise BadRequest(
                f"{caps.label} takes at most {caps.max_references} image"
                f"{'s' if caps.max_references > 1 else ''} per edit and you gave {len(images)}. "
                "Remove some, or ask an admin to switch provider in `/kontext settings`."
            )
        refs = await self.read_images(images, caps)
        return await self.submit(
            who,
            settings,
            kind=JobKind.EDIT,
            prompt=prompt,
            refs=refs,
            params=self._params(settings, aspect_ratio, seed),
        )

    async def edit_message(
        self, who: Requester, prompt: str, message_id: int, images: Sequence[ImageInput]
    ) -> Job:
        """The "Edit image" menu: a result of ours is edited from its stored bytes (keeping
        the chain of edits); any other message from its attachments."""
        ref = await self.repo.lookup_message(message_id)
        if ref is not None and ref.kind is MessageKind.RESULT and ref.output_id is not None:
            return await self.iterate(who, ref.job_id, prompt, output_id=ref.output_id)
        if not images:
            raise BadRequest(
                "That message has no image attachments. Pick a message with an image, or use "
                "`/edit` and attach one."
            )
        return await self.edit(who, prompt, images)

    async def result_job_of(self, message_id: int) -> int | None:
        """The job whose result ``message_id`` is, if it is one of ours."""
        ref = await self.repo.lookup_message(message_id)
        return ref.job_id if ref is not None and ref.kind is MessageKind.RESULT else None

    async def imagine(
        self,
        who: Requester,
        prompt: str,
        *,
        aspect_ratio: AspectRatio | None = None,
        seed: int | None = None,
    ) -> Job:
        prompt = self._check_prompt(prompt)
        settings = await self.allowed(who)
        caps = await self.caps_for(settings)
        if not caps.text_to_image:
            raise BadRequest(
                f"{caps.label} cannot make an image from text alone. Use `/edit` with an image, "
                "or ask an admin to switch provider in `/kontext settings`."
            )
        params = self._params(settings, aspect_ratio, seed)
        return await self.submit(
            who, settings, kind=JobKind.IMAGINE, prompt=prompt, refs=(), params=params
        )

    async def reroll(self, who: Requester, job_id: int) -> Job:
        """The same inputs with a new seed."""
        original = await self.job(job_id)
        settings = await self.allowed(who)
        check_can_iterate(settings, original, user_id=who.user_id, moderator=who.moderator)
        refs = []
        for ref in await self.repo.get_references(job_id):
            data = await self._blob(ref.content_hash)
            refs.append(
                ReferenceInput(
                    data=data,
                    mime=sniff_mime(data),
                    width=ref.width or 1,
                    height=ref.height or 1,
                    content_hash=ref.content_hash,
                    source=ref.source,
                    message_id=ref.message_id,
                    attachment_id=ref.attachment_id,
                    output_id=ref.output_id,
                )
            )
        params = original.params.model_copy(update={"seed": random_seed()})
        return await self.submit(
            who,
            settings,
            kind=JobKind.REROLL,
            prompt=original.prompt,
            refs=tuple(refs),
            params=params,
            parent_output_id=original.parent_output_id,
        )

    async def iterate(
        self, who: Requester, job_id: int, prompt: str, *, output_id: int | None = None
    ) -> Job:
        """Edit a result further: its output becomes the reference and the parent."""
        prompt = self._check_prompt(prompt)
        original = await self.job(job_id)
        settings = await self.allowed(who)
        check_can_iterate(settings, original, user_id=who.user_id, moderator=who.moderator)
        outputs = await self.repo.outputs_for_job(job_id)
        output = next((o for o in outputs if o.id == output_id), outputs[0] if outputs else None)
        if output is None:
            raise BadRequest(f"Job {job_id} has no stored output to edit.")
        data = await self._blob(output.content_hash)
        ref = ReferenceInput(
            data=data,
            mime=sniff_mime(data),
            width=output.width,
            height=output.height,
            content_hash=output.content_hash,
            source=ReferenceSource.OUTPUT,
            message_id=output.message_id,
            attachment_id=output.attachment_id,
            output_id=output.id,
        )
        params = self._params(settings, original.params.aspect_ratio, None)
        return await self.submit(
            who,
            settings,
            kind=JobKind.EDIT,
            prompt=prompt,
            refs=(ref,),
            params=params,
            parent_output_id=output.id,
        )

    async def check_iterate(self, who: Requester, job: Job) -> None:
        """Raise unless ``who`` may reroll or edit ``job`` (checked before opening a modal)."""
        settings = await self.allowed(who)
        check_can_iterate(settings, job, user_id=who.user_id, moderator=who.moderator)

    async def cancel(self, who: Requester, job_id: int) -> Job:
        job = await self.job(job_id)
        if who.guild_id and job.guild_id != who.guild_id:
            raise JobNotFound(f"There is no job {job_id} on this server.")
        check_can_manage(job, user_id=who.user_id, moderator=who.moderator, what="cancel it")
        return await self.engine.cancel(job_id, by_user_id=who.user_id, moderator=who.moderator)

    async def withdraw(self, job: Job) -> None:
        """Cancel a job that was queued but could not be shown (its status message failed)."""
        try:
            await self.engine.cancel(job.id, by_user_id=job.user_id, moderator=True)
        except KontextError as err:  # it already ended: nothing to withdraw
            log.info("job %d not withdrawn: %s", job.id, err.code)

    async def check_delete(self, who: Requester, job_id: int) -> None:
        job = await self.job(job_id)
        check_can_manage(
            job, user_id=who.user_id, moderator=who.moderator, what="delete this result"
        )

    async def forget_message(self, message_id: int) -> None:
        await self.repo.delete_message_ref(message_id)

    # --- /kontext -----------------------------------------------------------------------

    async def info(self, job_id: int) -> str:
        job = await self.job(job_id)
        outputs = await self.repo.outputs_for_job(job_id)
        chain: list[tuple[int, str]] = []
        if outputs:
            chain = [(j.id, j.prompt) for j, _ in await self.repo.lineage(outputs[0].id)]
        references = await self.repo.get_references(job_id)
        duration = job.finished_at - job.started_at if job.finished_at and job.started_at else None
        label, model = self.describe(job)
        return render.info_text(
            job=job,
            provider_label=label,
            model=model,
            seed=result_seed(job),
            duration=duration,
            chain=chain,
            reference_count=len(references),
        )

    async def queue(self, who: Requester) -> str:
        mine = await self.repo.list_jobs(
            guild_id=who.guild_id, user_id=who.user_id, statuses=_UNFINISHED, limit=20
        )
        waiting = await self.repo.list_jobs(
            guild_id=who.guild_id, statuses=[JobStatus.QUEUED], limit=QUEUE_SHOWN
        )
        positions = {j.id: await self.repo.queue_position(j.id) for j in (*mine, *waiting)}
        queued = await self.repo.count_queued(guild_id=who.guild_id)
        running = await self.repo.count_running(guild_id=who.guild_id)
        in_line = sorted(
            ((j, positions[j.id]) for j in waiting), key=lambda jp: (jp[1] or 1 << 30, jp[0].id)
        )
        return render.queue_text([(j, positions[j.id]) for j in mine], in_line, queued, running)

    async def usage(self, who: Requester, *, days: int, only_me: bool) -> str:
        since = (datetime.fromtimestamp(self.clock.now(), UTC) - timedelta(days=days - 1)).date()
        rows = await self.repo.usage(
            guild_id=who.guild_id,
            since_day=since.isoformat(),
            user_id=who.user_id if only_me else None,
        )
        return render.usage_text(
            rows, since_day=since.isoformat(), user_id=who.user_id if only_me else None
        )

    async def update_settings(self, who: Requester, changes: Mapping[str, Any]) -> GuildSettings:
        """Apply ``changes`` (only the options given) after checking Manage Server."""
        check_can_configure(manage_guild=who.manage_guild)
        current = await self.repo.get_guild_settings(who.guild_id)
        if not changes:
            return current
        provider = changes.get("provider")
        if provider is not None and provider not in self.capabilities:
            known = ", ".join(sorted(self.capabilities))
            raise BadRequest(f"Unknown provider {provider!r}. This bot has: {known}.")
        try:
            updated = GuildSettings.model_validate({**current.model_dump(), **changes})
        except ValueError as err:
            raise BadRequest(f"Those settings are not valid: {err}") from err
        await self.repo.save_guild_settings(updated, now=self.clock.now())
        return updated

    # --- helpers ------------------------------------------------------------------------

    @staticmethod
    def _check_prompt(prompt: str) -> str:
        prompt = prompt.strip()
        if not prompt:
            raise BadRequest("The prompt is empty: describe the change you want.")
        if len(prompt) > MAX_PROMPT_LENGTH:
            raise BadRequest(
                f"The prompt is {len(prompt)} characters long; the limit is "
                f"{MAX_PROMPT_LENGTH}. Shorten it and try again."
            )
        return prompt

    async def allowed(self, who: Requester) -> GuildSettings:
        settings = await self.repo.get_guild_settings(who.guild_id)
        check_can_request(
            settings,
            channel_id=who.channel_id,
            parent_channel_id=who.parent_channel_id,
            role_ids=who.role_ids,
        )
        return settings

    @staticmethod
    def _params(
        settings: GuildSettings, aspect_ratio: AspectRatio | None, seed: int | None
    ) -> JobParams:
        # The engine fills in the guild's default ratio and safety tolerance where the
        # provider supports them; a seed is always chosen here so results can be reproduced.
        return JobParams(
            aspect_ratio=aspect_ratio, seed=seed if seed is not None else random_seed()
        )

    async def _blob(self, content_hash: str) -> bytes:
        data = await self.repo.get_blob(content_hash)
        if data is None:
            raise BadRequest(
                "The images of that job are no longer stored (they expire after a while). "
                "Use `/edit` with the image again."
            )
        return data

    async def read_images(
        self, images: Sequence[ImageInput], caps: Capabilities, *, first_number: int = 1
    ) -> tuple[ReferenceInput, ...]:
        """Validate attachments (declared size first, then real decoding) into references;
        ``first_number`` is how the first of them is named in a refusal ("Image 2 ...")."""
        for number, image in enumerate(images, first_number):
            if image.size > MAX_IMAGE_BYTES:
                raise BadRequest(
                    f"Image {number} ({image.filename}) is {image.size / 2**20:.1f} MiB; "
                    f"the limit is {MAX_IMAGE_BYTES // 2**20} MiB. Attach a smaller image."
                )

        async def one(number: int, image: ImageInput) -> ReferenceInput:
            data = await image.read()
            try:
                prepared: PreparedImage = await prepare_image(
                    data, max_side=caps.max_reference_side
                )
            except ImageRejected as err:
                raise ImageRejected(
                    err.reason, f"Image {number} ({image.filename}): {err.user_message}"
                ) from err
            return ReferenceInput(
                data=prepared.data,
                mime=prepared.mime,
                width=prepared.width,
                height=prepared.height,
                content_hash=prepared.content_hash,
                source=ReferenceSource.ATTACHMENT,
                url=None if prepared.reencoded else image.url,
                message_id=image.message_id,
                attachment_id=image.attachment_id,
            )

        numbered = enumerate(images, first_number)
        return tuple(await asyncio.gather(*(one(n, image) for n, image in numbered)))

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
    ) -> Job:
        """Queue a job through the engine (which refuses limits and quotas)."""
        request = EditRequest(
            guild_id=who.guild_id,
            channel_id=who.channel_id,
            thread_id=who.thread_id,
            user_id=who.user_id,
            kind=kind,
            prompt=prompt,
            params=params,
            provider=settings.provider,
            parent_output_id=parent_output_id,
            reply_to_message_id=reply_to_message_id,
            images=refs,
        )
        job = await self.engine.submit(request)
        log.info("job %d queued (%s) in guild %d", job.id, kind.value, who.guild_id)
        return job


def provider_and_model(
    capabilities: Mapping[str, Capabilities], job: Job
) -> tuple[str, str | None]:
    """The provider's human name and the model that served ``job`` (the guild's choice, else
    the provider's model for the kind of request)."""
    caps = capabilities.get(job.provider)
    if caps is None:
        return job.provider, job.model
    if job.model:
        return caps.label, job.model
    return caps.label, caps.text_model if job.kind is JobKind.IMAGINE else caps.edit_model


def result_seed(job: Job) -> int | None:
    """The seed the provider reports having used, else the one asked for."""
    if job.result_json:
        try:
            seed = json.loads(job.result_json).get("seed")
        except (ValueError, AttributeError):
            seed = None
        if isinstance(seed, int):
            return seed
    return job.params.seed
