"""Creating jobs: ``/edit``, ``/imagine``, Reroll, Edit, replies and remix posts; Cancel.

Every method refuses before anything is queued: a job or output of another server first,
then the channel and role rules, the prompt, what Discord says about the attached images
(size, type, dimensions) and the provider's maximum of references; the engine then refuses
limits and quotas without writing anything. An attachment's bytes are downloaded and decoded
by the worker before the provider (:mod:`bot.jobs.attachments`): an unreadable one fails the
job there, with the reason in its status message.

Decisions worth knowing:

* **Which image a reply edits.** A reply to one of the bot's results edits that result's
  output (its kept bytes, so a reply days later works although Discord's attachment URLs have
  expired); when retention purged the bytes, the front end's ``fallback`` downloads the
  message's attachment again from a freshly fetched message. Images attached to the reply
  are extra references after it, up to the provider's maximum.
* **Who may iterate.** Outside remix channels the guild's ``iterate_policy`` applies (anyone,
  or the requester only; moderators always may). In a remix channel anyone may remix anything:
  that is what the channel is for.
* **Options.** ``/edit`` and ``/imagine`` take :class:`~bot.creative_models.RequestOptions`
  (count, style, aspect ratio, knobs, provider), resolved by the creative service: option >
  member preference > server setting > provider default, each refused clearly where the
  server or the provider does not allow it. Rerolls keep the job's resolved values (a batch
  rerolls as a batch).
* **Batches.** A reply to a batch's message names the image it edits by its number
  ("2: make it night"); a reply without one is refused, asking which.
* **Style suffix.** A remix channel's style suffix is applied as a style (the same mechanism
  as named styles) to every prompt started there, before the length check.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence

from bot.access import check_can_iterate, check_can_manage
from bot.creative.service import reply_number
from bot.creative_models import Origin, PickResult, RequestOptions, Resolved
from bot.errors import BadRequest, KontextError, NotAllowed
from bot.i18n import t
from bot.jobs.requests import ReferenceInput
from bot.models import (
    GuildSettings,
    Job,
    JobKind,
    MessageKind,
    Output,
    RemixChannel,
)
from bot.providers.base import Capabilities
from bot.text import check_prompt

from .base import EditBase, ImageGone, check_not_erased
from .inputs import (
    ImageInput,
    Requester,
    check_count,
    declare_images,
    from_output,
    from_reference,
    random_seed,
)

log = logging.getLogger(__name__)

#: Reads an image's bytes again from Discord (a freshly fetched message); ``None`` if gone.
Fallback = Callable[[], Awaitable[bytes | None]]

#: Where a provider the member chose comes from (otherwise the engine's routing decides).
CHOSEN = frozenset({Origin.OPTION, Origin.MEMBER})

NO_IMAGE = t("errors.edit.no_image")


class CreatingJobs(EditBase):
    async def edit(
        self,
        who: Requester,
        prompt: str,
        images: Sequence[ImageInput],
        options: RequestOptions | None = None,
    ) -> Job:
        """``/edit`` and the "Edit image" menu: validate everything, then queue."""
        if not images:
            raise BadRequest(t("errors.edit.attach_image"))
        return await self._start(who, prompt, images, options or RequestOptions())

    async def edit_message(
        self,
        who: Requester,
        prompt: str,
        message_id: int,
        images: Callable[[], Awaitable[Sequence[ImageInput]]],
        options: RequestOptions | None = None,
    ) -> Job:
        """The "Edit image" menu: a result of ours is edited from its stored bytes (keeping
        the chain of edits), once it is known to be of ``who``'s server; any other message
        from its attachments, which ``images`` reads (only then)."""
        ref = await self.message_ref(message_id)
        if ref is not None and ref.kind is MessageKind.RESULT and ref.output_id is not None:
            return await self.iterate(
                who, ref.job_id, prompt, output_id=ref.output_id, options=options
            )
        found = await images()
        if not found:
            raise BadRequest(NO_IMAGE)
        return await self.edit(who, prompt, found, options)

    async def result_job_of(self, message_id: int) -> int | None:
        """The job whose result ``message_id`` is, if it is one of ours."""
        ref = await self.message_ref(message_id)
        return ref.job_id if ref is not None and ref.kind is MessageKind.RESULT else None

    async def imagine(
        self,
        who: Requester,
        prompt: str,
        options: RequestOptions | None = None,
    ) -> Job:
        return await self._start(who, prompt, (), options or RequestOptions())

    async def _resolve(
        self,
        who: Requester,
        words: str,
        options: RequestOptions,
        *,
        remix_suffix: str | None = None,
    ) -> tuple[GuildSettings, Resolved]:
        """The server's settings once ``who`` may ask here, and what the request runs with.
        The member's own words pass the one prompt check (a style may stand in for them)."""
        words = check_prompt(words) if words.strip() or not options.style else ""
        settings = await self.allowed(who)
        resolved = await self.creative.resolve(
            who.guild_id,
            who.user_id,
            options.model_copy(update={"prompt": words}),
            role_ids=who.role_ids,
            remix_suffix=remix_suffix,
            guild=settings,
        )
        if resolved.params.seed is None:
            resolved = resolved.model_copy(
                update={"params": resolved.params.model_copy(update={"seed": random_seed()})}
            )
        return settings, resolved

    def _caps(self, resolved: Resolved) -> Capabilities:
        caps = self.capabilities.get(resolved.provider)
        if caps is None:  # the resolver only chooses configured providers
            raise BadRequest(t("errors.edit.provider_not_configured", name=repr(resolved.provider)))
        return caps

    async def _start(
        self, who: Requester, prompt: str, images: Sequence[ImageInput], options: RequestOptions
    ) -> Job:
        """A new chain: an edit of ``images``, or an image from the prompt alone."""
        settings, resolved = await self._resolve(who, prompt, options)
        caps = self._caps(resolved)
        if not images and not caps.text_to_image:
            raise BadRequest(t("errors.edit.no_text_to_image", provider=caps.label))
        check_count(caps, replied=0, attached=len(images))
        return await self._submit_resolved(
            who,
            settings,
            resolved,
            kind=JobKind.EDIT if images else JobKind.IMAGINE,
            refs=declare_images(images),
        )

    async def _submit_resolved(
        self,
        who: Requester,
        settings: GuildSettings,
        resolved: Resolved,
        *,
        kind: JobKind,
        refs: tuple[ReferenceInput, ...],
        parent_output_id: int | None = None,
        reply_to_message_id: int | None = None,
    ) -> Job:
        return await self.submit(
            who,
            settings,
            kind=kind,
            prompt=resolved.prompt,
            refs=refs,
            params=resolved.params,
            parent_output_id=parent_output_id,
            reply_to_message_id=reply_to_message_id,
            provider=resolved.provider if resolved.origins["provider"] in CHOSEN else None,
        )

    async def check_iterate(self, who: Requester, job_id: int) -> Job:
        """Job ``job_id`` once ``who`` may reroll or edit it (checked before a modal opens)."""
        job, _settings = await self._iterable(who, job_id)
        return job

    async def _iterable(self, who: Requester, job_id: int) -> tuple[Job, GuildSettings]:
        job = await self.owned_job(who, job_id)
        check_not_erased(job)
        settings = await self.allowed(who)
        check_can_iterate(settings, job, user_id=who.user_id, moderator=who.moderator)
        return job, settings

    async def reroll(self, who: Requester, job_id: int) -> Job:
        """The same inputs with a new seed."""
        original, settings = await self._iterable(who, job_id)
        refs = [
            from_reference(ref, await self.kept_bytes(ref.content_hash))
            for ref in await self.repo.get_references(job_id)
        ]
        # The new seed, and the pinging of whoever rerolls (their preference, not the author's).
        ping = await self.creative.ping_for(who.guild_id, who.user_id)
        params = original.params.model_copy(update={"seed": random_seed(), "ping": ping})
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
        self,
        who: Requester,
        job_id: int,
        prompt: str,
        *,
        output_id: int | None = None,
        options: RequestOptions | None = None,
    ) -> Job:
        """Edit a result further: its output becomes the reference and the parent. A batch's
        image is named by ``output_id``, or by a number starting ``prompt`` ("2: ...")."""
        original, _settings = await self._iterable(who, job_id)
        outputs = await self.repo.outputs_for_job(job_id)
        chosen = next((o for o in outputs if o.id == output_id), None)
        if chosen is None:
            chosen, prompt = _numbered(outputs, prompt)
        wanted = options or RequestOptions()
        if wanted.aspect_ratio is None and original.params.aspect_ratio is not None:
            wanted = wanted.model_copy(update={"aspect_ratio": original.params.aspect_ratio})
        settings, resolved = await self._resolve(who, prompt, wanted)
        if chosen is None:
            raise BadRequest(t("errors.edit.no_output", job_id=job_id))
        ref = from_output(chosen, await self.kept_bytes(chosen.content_hash))
        return await self._submit_resolved(
            who, settings, resolved, kind=JobKind.EDIT, refs=(ref,), parent_output_id=chosen.id
        )

    async def reply(
        self,
        who: Requester,
        prompt: str,
        output_id: int,
        extra: Sequence[ImageInput],
        *,
        reply_to_message_id: int | None,
        fallback: Fallback | None = None,
        remix: RemixChannel | None = None,
    ) -> Job:
        """A reply to one of our results: edit its output, with ``extra`` images after it.
        A reply to a batch names its image by number ("2: make it night")."""
        parent, output = await self.owned_output(who, output_id)
        check_not_erased(parent)
        settings = await self.allowed(who)
        if remix is None:
            check_can_iterate(settings, parent, user_id=who.user_id, moderator=who.moderator)
        siblings = await self.repo.outputs_for_job(parent.id)
        if len(siblings) > 1:
            picked, prompt = _numbered(siblings, prompt)
            output = picked or output
        ratio = RequestOptions(aspect_ratio=parent.params.aspect_ratio)
        settings, resolved = await self._resolve(
            who, prompt, ratio, remix_suffix=remix.style_suffix if remix else None
        )
        caps = self._caps(resolved)
        check_count(caps, replied=1, attached=len(extra))
        data = await self.repo.get_blob(output.content_hash)
        if data is None and fallback is not None:
            data = await fallback()
        if data is None:
            raise ImageGone(t("errors.edit.replied_image_gone"))
        first = from_output(output, data)
        refs = (first, *declare_images(extra, first_number=2))
        return await self._submit_resolved(
            who,
            settings,
            resolved,
            kind=JobKind.REMIX if remix is not None else JobKind.REPLY,
            refs=refs,
            parent_output_id=output.id,
            reply_to_message_id=reply_to_message_id,
        )

    async def remix(
        self,
        who: Requester,
        prompt: str,
        images: Sequence[ImageInput],
        *,
        remix: RemixChannel,
        reply_to_message_id: int | None,
        extra: Sequence[ImageInput] = (),
    ) -> Job:
        """A remix-channel post (``images`` are its own) or a reply to a member's image
        (``images`` are the replied-to message's, ``extra`` the reply's own)."""
        if remix.guild_id != who.guild_id:
            raise BadRequest(t("errors.edit.not_remix_channel"))
        settings, resolved = await self._resolve(
            who, prompt, RequestOptions(), remix_suffix=remix.style_suffix
        )
        caps = self._caps(resolved)
        if not images:
            raise BadRequest(t("errors.edit.nothing_to_remix"))
        check_count(caps, replied=len(images), attached=len(extra))
        refs = declare_images([*images, *extra])
        return await self._submit_resolved(
            who,
            settings,
            resolved,
            kind=JobKind.REMIX,
            refs=refs,
            reply_to_message_id=reply_to_message_id,
        )

    async def pick(self, who: Requester, job_id: int, number: int) -> PickResult:
        """Choose image ``number`` of batch ``job_id`` (once it is known to be of ``who``'s
        server), recorded as its chosen child for the front end to post alone."""
        await self.owned_job(who, job_id)
        return await self.creative.pick(
            job_id, number, by_user_id=who.user_id, moderator=who.moderator
        )

    async def place(self, job_id: int, *, thread_id: int) -> Job:
        """Record the thread a new remix chain got (before its status message is posted)."""
        job = await self.repo.update_job(job_id, now=self.clock.now(), thread_id=thread_id)
        return job if job is not None else await self.job(job_id)

    async def cancel(self, who: Requester, job_id: int) -> Job:
        job = await self.owned_job(who, job_id)
        check_can_manage(
            job, user_id=who.user_id, moderator=who.moderator, what=t("errors.access.action.cancel")
        )
        return await self.engine.cancel(job_id, by_user_id=who.user_id, moderator=who.moderator)

    async def withdraw(self, job: Job) -> None:
        """Cancel a job that was queued but could not be shown (its status message failed)."""
        try:
            await self.engine.cancel(job.id, by_user_id=job.user_id, moderator=True)
        except KontextError as err:  # it already ended: nothing to withdraw
            log.info("job %d not withdrawn: %s", job.id, err.code)

    async def check_delete(self, who: Requester, job_id: int, message_id: int) -> None:
        """Refuse unless ``message_id`` is a result of job ``job_id`` and ``who`` may delete
        it (the requester or a moderator)."""
        job = await self.owned_job(who, job_id)
        ref = await self.message_ref(message_id)
        if ref is None or ref.job_id != job_id:
            raise NotAllowed(t("errors.edit.wrong_button"))
        check_can_manage(
            job, user_id=who.user_id, moderator=who.moderator, what=t("errors.access.action.delete")
        )

    async def forget_message(self, message_id: int) -> None:
        await self.repo.delete_message_ref(message_id)


def _numbered(outputs: Sequence[Output], prompt: str) -> tuple[Output | None, str]:
    """The output a prompt names by its number ("2: make it night") and the rest of the
    prompt; a batch's image must be named, a single output needs no number."""
    if len(outputs) <= 1:
        return (outputs[0] if outputs else None), prompt
    by_number = {o.number: o for o in outputs}
    number, rest = reply_number(prompt, max(by_number))
    have = ", ".join(str(n) for n in sorted(by_number))
    if number is None or number not in by_number:
        raise BadRequest(t("errors.edit.which_image", count=len(outputs), numbers=have))
    return by_number[number], rest
