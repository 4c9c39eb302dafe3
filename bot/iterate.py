"""Iterating on images without a command: replies, remix channels, history, Undo and Share.

The Discord side (:mod:`cogs.remix`, :mod:`cogs.history`) reads a message or an interaction
into plain values and calls one method here; this module decides what the message means and
queues the job through the same engine, access rules and provider limits as ``/edit``.

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
  (after a comma, unless the prompt already ends in punctuation) before the length check.
* **Undo** re-posts the parent output as the new tip. The new message is indexed as a result
  of the *parent's* job and output, so a reply to it continues from the parent, and its
  buttons (Reroll, Info, History, Undo) act on the parent. Nothing is deleted.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from bot import history
from bot.access import check_can_configure, check_can_iterate
from bot.errors import KontextError
from bot.jobs.requests import ReferenceInput, sniff_mime
from bot.kontext_service import BadRequest, ImageInput, KontextService, Requester, random_seed
from bot.models import (
    MAX_PROMPT_LENGTH,
    GuildSettings,
    Job,
    JobKind,
    JobParams,
    MessageKind,
    MessageRef,
    Output,
    ReferenceSource,
    RemixChannel,
)
from bot.providers.base import Capabilities

log = logging.getLogger(__name__)

#: Reads an image's bytes again from Discord (a freshly fetched message); ``None`` if gone.
Fallback = Callable[[], Awaitable[bytes | None]]

MAX_STYLE_SUFFIX = 300


class ImageGone(KontextError):
    code = "image_gone"


class HistoryUnavailable(KontextError):
    code = "history_unavailable"


@dataclass(frozen=True)
class HistoryView:
    """What the History button and ``/kontext history`` show."""

    text: str
    sheet: bytes  # PNG
    steps: int


@dataclass(frozen=True)
class UndoTarget:
    """The parent output to re-post, and what to say above it."""

    job: Job  # the parent output's job: the buttons and the index act on it
    output: Output
    data: bytes
    step: int  # its step number in the chain


def strip_mention(content: str, bot_id: int) -> str:
    """``content`` without the bot's own mentions (``<@id>`` and ``<@!id>``), tidied."""
    text = re.sub(rf"<@!?{bot_id}>", " ", content)
    return re.sub(r"[ \t]{2,}", " ", text).strip()


def with_style(prompt: str, suffix: str | None) -> str:
    """``prompt`` with a remix channel's style suffix appended."""
    prompt = prompt.strip()
    suffix = (suffix or "").strip()
    if not suffix or not prompt:
        return prompt
    joiner = " " if prompt[-1] in ".,;:!?" else ", "
    return f"{prompt}{joiner}{suffix}"


class IterateService:
    """Replies, remix channels and the history tree, in plain values (no discord import)."""

    def __init__(self, kontext: KontextService) -> None:
        self.kontext = kontext
        self.repo = kontext.repo
        self.clock = kontext.clock

    # --- what a message is about ---------------------------------------------------------

    async def remix_channel(self, channel_id: int, parent_id: int | None) -> RemixChannel | None:
        """The remix channel ``channel_id`` is, or is a thread of."""
        found = await self.repo.get_remix_channel(channel_id)
        if found is None and parent_id is not None:
            found = await self.repo.get_remix_channel(parent_id)
        return found

    async def result_of(self, message_id: int) -> MessageRef | None:
        """The index entry when ``message_id`` is one of the bot's results with an output."""
        ref = await self.repo.lookup_message(message_id)
        if ref is None or ref.kind is not MessageKind.RESULT or ref.output_id is None:
            return None
        return ref

    # --- new jobs ------------------------------------------------------------------------

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
        settings = await self.kontext.allowed(who)
        output = await self.repo.get_output(output_id)
        parent = await self.repo.get_job(output.job_id) if output is not None else None
        if output is None or parent is None:
            raise ImageGone(
                "I no longer have the image you replied to (it was removed). Reply to a newer "
                "result, or use `/edit` with the image."
            )
        if remix is None:
            check_can_iterate(settings, parent, user_id=who.user_id, moderator=who.moderator)
        prompt = self._prompt(prompt, remix)
        caps = await self.kontext.caps_for(settings)
        self._check_count(caps, replied=1, attached=len(extra))
        data = await self.repo.get_blob(output.content_hash)
        if data is None and fallback is not None:
            data = await fallback()
        if data is None:
            raise ImageGone(
                "The image of the message you replied to is gone (it is no longer kept and "
                "the message has no attachment). Use `/edit` with the image instead."
            )
        first = ReferenceInput(
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
        refs = (first, *await self.kontext.read_images(extra, caps, first_number=2))
        kind = JobKind.REMIX if remix is not None else JobKind.REPLY
        params = JobParams(aspect_ratio=parent.params.aspect_ratio, seed=random_seed())
        return await self.kontext.submit(
            who,
            settings,
            kind=kind,
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
        settings = await self.kontext.allowed(who)
        prompt = self._prompt(prompt, remix)
        caps = await self.kontext.caps_for(settings)
        every = [*images, *extra]
        if not images:
            raise BadRequest("That message has no image to remix. Reply to a message with one.")
        self._check_count(caps, replied=len(images), attached=len(extra))
        refs = await self.kontext.read_images(every, caps, first_number=1)
        return await self.kontext.submit(
            who,
            settings,
            kind=JobKind.REMIX,
            prompt=prompt,
            refs=refs,
            params=JobParams(seed=random_seed()),
            parent_output_id=None,
            reply_to_message_id=reply_to_message_id,
        )

    # --- history and undo ----------------------------------------------------------------

    async def output_of(self, job_id: int, message_id: int | None) -> int:
        """The output a result message shows (an Undo re-post shows its parent's), else the
        job's first output."""
        if message_id is not None:
            ref = await self.result_of(message_id)
            if ref is not None and ref.output_id is not None:
                return ref.output_id
        outputs = await self.repo.outputs_for_job(job_id)
        if not outputs:
            raise HistoryUnavailable(f"Job {job_id} has no stored output to show a history of.")
        return outputs[0].id

    async def history(self, output_id: int) -> HistoryView:
        """The numbered chain (with branch markers) and its contact sheet."""
        tree = await history.load_tree(self.repo, output_id)
        if tree is None:
            raise HistoryUnavailable("I have no history for that image (it may have been purged).")
        sheet = await history.contact_sheet(tree)
        return HistoryView(text=history.format_chain(tree), sheet=sheet, steps=len(tree.steps))

    async def undo(self, who: Requester, job_id: int) -> UndoTarget:
        """The parent output of ``job_id``'s result, checked and with its bytes."""
        job = await self.kontext.job(job_id)
        settings = await self.kontext.allowed(who)
        check_can_iterate(settings, job, user_id=who.user_id, moderator=who.moderator)
        if job.parent_output_id is None:
            raise BadRequest("This is the first image of its chain: there is nothing to undo.")
        output = await self.repo.get_output(job.parent_output_id)
        parent = await self.repo.get_job(output.job_id) if output is not None else None
        data = await self.repo.get_blob(output.content_hash) if output is not None else None
        if output is None or parent is None or data is None:
            raise ImageGone(
                "The previous image of this chain is no longer kept, so I can't go back to it."
            )
        lineage = await self.repo.lineage(output.id)
        return UndoTarget(job=parent, output=output, data=data, step=max(1, len(lineage)))

    async def index_result(self, *, message_id: int, channel_id: int, output: Output) -> None:
        """Make ``message_id`` (an Undo re-post) a result of ``output``: replies continue it."""
        await self.repo.index_message(
            MessageRef(
                message_id=message_id,
                channel_id=channel_id,
                job_id=output.job_id,
                output_id=output.id,
                kind=MessageKind.RESULT,
            ),
            now=self.clock.now(),
        )

    async def place(self, job_id: int, *, thread_id: int) -> Job:
        """Record the thread a new remix chain got (before its status message is posted)."""
        job = await self.repo.update_job(job_id, now=self.clock.now(), thread_id=thread_id)
        return job if job is not None else await self.kontext.job(job_id)

    async def output_bytes(self, output_id: int) -> tuple[Job, Output, bytes | None] | None:
        """An output with its job and kept bytes (``None`` bytes: purged)."""
        output = await self.repo.get_output(output_id)
        job = await self.repo.get_job(output.job_id) if output is not None else None
        if output is None or job is None:
            return None
        return job, output, await self.repo.get_blob(output.content_hash)

    # --- remix channels and the gallery --------------------------------------------------

    async def add_remix_channel(
        self, who: Requester, channel_id: int, style_suffix: str | None
    ) -> RemixChannel:
        check_can_configure(manage_guild=who.manage_guild)
        suffix = (style_suffix or "").strip() or None
        if suffix is not None and len(suffix) > MAX_STYLE_SUFFIX:
            raise BadRequest(
                f"The style suffix is {len(suffix)} characters long; keep it under "
                f"{MAX_STYLE_SUFFIX}."
            )
        channel = RemixChannel(guild_id=who.guild_id, channel_id=channel_id, style_suffix=suffix)
        await self.repo.add_remix_channel(channel, now=self.clock.now())
        return channel

    async def remove_remix_channel(self, who: Requester, channel_id: int) -> bool:
        check_can_configure(manage_guild=who.manage_guild)
        return await self.repo.remove_remix_channel(who.guild_id, channel_id)

    async def list_remix_channels(self, guild_id: int) -> list[RemixChannel]:
        return await self.repo.list_remix_channels(guild_id)

    async def set_gallery(self, who: Requester, channel_id: int | None) -> GuildSettings:
        return await self.kontext.update_settings(who, {"gallery_channel_id": channel_id})

    async def gallery_of(self, guild_id: int) -> int | None:
        return (await self.repo.get_guild_settings(guild_id)).gallery_channel_id

    # --- helpers -------------------------------------------------------------------------

    @staticmethod
    def _prompt(prompt: str, remix: RemixChannel | None) -> str:
        prompt = prompt.strip()
        if not prompt:
            raise BadRequest("The prompt is empty: write the change you want in your message.")
        prompt = with_style(prompt, remix.style_suffix if remix else None)
        if len(prompt) > MAX_PROMPT_LENGTH:
            raise BadRequest(
                f"The prompt is {len(prompt)} characters long (with this channel's style); "
                f"the limit is {MAX_PROMPT_LENGTH}. Shorten it and try again."
            )
        return prompt

    @staticmethod
    def _check_count(caps: Capabilities, *, replied: int, attached: int) -> None:
        """Refuse more references than the provider takes, saying which images count."""
        most = caps.max_references
        if replied + attached <= most:
            return
        plural = "s" if most > 1 else ""
        if replied and attached:
            room = most - replied
            detail = (
                f"the image{'s' if replied > 1 else ''} you replied to ({replied}) plus "
                f"{attached} attached; attach at most {room}"
                if room > 0
                else f"the {replied} images you replied to already fill that; attach none"
            )
        else:
            detail = f"this message has {replied + attached}; post fewer"
        raise BadRequest(f"{caps.label} takes at most {most} image{plural} per edit: {detail}.")


__all__ = [
    "Fallback",
    "HistoryUnavailable",
    "HistoryView",
    "ImageGone",
    "IterateService",
    "UndoTarget",
    "strip_mention",
    "with_style",
]
