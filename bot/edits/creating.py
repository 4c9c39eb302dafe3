"""Creating jobs: ``/edit``, ``/imagine``, Reroll, Edit, replies and remix posts; Cancel.

Every method refuses before anything is queued: a job or output of another server first,
then the channel and role rules, the prompt, the images and the provider's maximum of
references; the engine then refuses limits and quotas without writing anything.

Decisions worth knowing:

* **Which image a reply edits.** A reply to one of the bot's results edits that result's
  output (its kept bytes, so a reply days later works although Discord's attachment URLs have
  expired); when retention purged the bytes, the front end's ``fallback`` downloads the
  message's attachment again from a freshly fetched message. Images attached to the reply
  are extra references after it, up to the provider's maximum.
* **Who may iterate.** Outside remix channels the guild's ``iterate_policy`` applies (anyone,
  or the requester only; moderators always may). In a remix channel anyone may remix anything:
  that is what the channel is for.
* **Style suffix.** A remix channel's style suffix is appended to every prompt started there
  before the length check.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence

from bot.access import check_can_iterate, check_can_manage
from bot.errors import BadRequest, KontextError, NotAllowed
from bot.models import (
    AspectRatio,
    GuildSettings,
    Job,
    JobKind,
    JobParams,
    MessageKind,
    RemixChannel,
)
from bot.prompts import styled_prompt
from bot.text import check_prompt

from .base import EditBase, ImageGone, check_not_erased
from .inputs import (
    ImageInput,
    Requester,
    check_count,
    from_output,
    from_reference,
    random_seed,
    read_images,
)

log = logging.getLogger(__name__)

#: Reads an image's bytes again from Discord (a freshly fetched message); ``None`` if gone.
Fallback = Callable[[], Awaitable[bytes | None]]

NO_IMAGE = (
    "That message has no image attachments. Pick a message with an image, or use `/edit` and "
    "attach one."
)


class CreatingJobs(EditBase):
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
        if not images:
            raise BadRequest("Attach at least one image to edit (PNG, JPEG or WebP).")
        return await self._start(who, prompt, images, aspect_ratio=aspect_ratio, seed=seed)

    async def edit_message(
        self,
        who: Requester,
        prompt: str,
        message_id: int,
        images: Callable[[], Awaitable[Sequence[ImageInput]]],
    ) -> Job:
        """The "Edit image" menu: a result of ours is edited from its stored bytes (keeping
        the chain of edits), once it is known to be of ``who``'s server; any other message
        from its attachments, which ``images`` reads (only then)."""
        ref = await self.message_ref(message_id)
        if ref is not None and ref.kind is MessageKind.RESULT and ref.output_id is not None:
            return await self.iterate(who, ref.job_id, prompt, output_id=ref.output_id)
        found = await images()
        if not found:
            raise BadRequest(NO_IMAGE)
        return await self.edit(who, prompt, found)

    async def result_job_of(self, message_id: int) -> int | None:
        """The job whose result ``message_id`` is, if it is one of ours."""
        ref = await self.message_ref(message_id)
        return ref.job_id if ref is not None and ref.kind is MessageKind.RESULT else None

    async def imagine(
        self,
        who: Requester,
        prompt: str,
        *,
        aspect_ratio: AspectRatio | None = None,
        seed: int | None = None,
    ) -> Job:
        return await self._start(who, prompt, (), aspect_ratio=aspect_ratio, seed=seed)

    async def _start(
        self,
        who: Requester,
        prompt: str,
        images: Sequence[ImageInput],
        *,
        aspect_ratio: AspectRatio | None,
        seed: int | None,
    ) -> Job:
        """A new chain: an edit of ``images``, or an image from the prompt alone."""
        prompt = check_prompt(prompt)
        settings = await self.allowed(who)
        caps = await self.caps_for(settings)
        if not images and not caps.text_to_image:
            raise BadRequest(
                f"{caps.label} cannot make an image from text alone. Use `/edit` with an image, "
                "or ask an admin to switch provider in `/kontext-admin settings`."
            )
        check_count(caps, replied=0, attached=len(images))
        chosen = seed if seed is not None else random_seed()
        return await self.submit(
            who,
            settings,
            kind=JobKind.EDIT if images else JobKind.IMAGINE,
            prompt=prompt,
            refs=await read_images(images, caps),
            params=JobParams(aspect_ratio=aspect_ratio, seed=chosen),
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
        original, settings = await self._iterable(who, job_id)
        prompt = check_prompt(prompt)
        outputs = await self.repo.outputs_for_job(job_id)
        output = next((o for o in outputs if o.id == output_id), outputs[0] if outputs else None)
        if output is None:
            raise BadRequest(f"Job {job_id} has no stored output to edit.")
        ref = from_output(output, await self.kept_bytes(output.content_hash))
        params = JobParams(aspect_ratio=original.params.aspect_ratio, seed=random_seed())
        return await self.submit(
            who,
            settings,
            kind=JobKind.EDIT,
            prompt=prompt,
            refs=(ref,),
            params=params,
            parent_output_id=output.id,
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
        """A reply to one of our results: edit its output, with ``extra`` images after it."""
        parent, output = await self.owned_output(who, output_id)
        check_not_erased(parent)
        settings = await self.allowed(who)
        if remix is None:
            check_can_iterate(settings, parent, user_id=who.user_id, moderator=who.moderator)
        prompt = styled_prompt(prompt, remix.style_suffix if remix else None)
        caps = await self.caps_for(settings)
        check_count(caps, replied=1, attached=len(extra))
        data = await self.repo.get_blob(output.content_hash)
        if data is None and fallback is not None:
            data = await fallback()
        if data is None:
            raise ImageGone(
                "The image of the message you replied to is gone (it is no longer kept and "
                "the message has no attachment). Use `/edit` with the image instead."
            )
        first = from_output(output, data)
        refs = (first, *await read_images(extra, caps, first_number=2))
        params = JobParams(aspect_ratio=parent.params.aspect_ratio, seed=random_seed())
        return await self.submit(
            who,
            settings,
            kind=JobKind.REMIX if remix is not None else JobKind.REPLY,
            prompt=prompt,
            refs=refs,
            params=params,
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
            raise BadRequest("That channel is not a remix channel of this server.")
        settings = await self.allowed(who)
        prompt = styled_prompt(prompt, remix.style_suffix)
        caps = await self.caps_for(settings)
        if not images:
            raise BadRequest("That message has no image to remix. Reply to a message with one.")
        check_count(caps, replied=len(images), attached=len(extra))
        refs = await read_images([*images, *extra], caps, first_number=1)
        return await self.submit(
            who,
            settings,
            kind=JobKind.REMIX,
            prompt=prompt,
            refs=refs,
            params=JobParams(seed=random_seed()),
            reply_to_message_id=reply_to_message_id,
        )

    async def place(self, job_id: int, *, thread_id: int) -> Job:
        """Record the thread a new remix chain got (before its status message is posted)."""
        job = await self.repo.update_job(job_id, now=self.clock.now(), thread_id=thread_id)
        return job if job is not None else await self.job(job_id)

    async def cancel(self, who: Requester, job_id: int) -> Job:
        job = await self.owned_job(who, job_id)
        check_can_manage(job, user_id=who.user_id, moderator=who.moderator, what="cancel it")
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
            raise NotAllowed("That button does not belong to this message, so nothing was deleted.")
        check_can_manage(
            job, user_id=who.user_id, moderator=who.moderator, what="delete this result"
        )

    async def forget_message(self, message_id: int) -> None:
        await self.repo.delete_message_ref(message_id)
