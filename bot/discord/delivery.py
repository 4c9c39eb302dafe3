"""Discord's side of a job: the status message, its thread, and posting the result.

Everything here uses the bot token (``channel.send`` and message edits), never an
interaction token, so a job that finishes long after its command (interaction tokens die after
15 minutes) is still delivered, and so is a job resumed after a restart.

* :meth:`DiscordDelivery.open_status` posts "queued — position N" with a Cancel button where the
  command ran, starts a thread from it (or uses the current thread), and stores both ids on
  the job before any result may be posted (:meth:`preparing` holds delivery back meanwhile).
* :meth:`DiscordDelivery.on_event` is the engine's event sink; the status message itself is
  kept up to date by :class:`bot.discord.status.StatusBoard`.
* :meth:`DiscordDelivery.deliver` is the engine's Deliverer. It is idempotent: an output that
  already has a message id in storage is never posted again, and the post carries the job's
  nonce with ``enforce_nonce`` (discord.py 2.7 sends it with every nonce) so that a post
  repeated after a crash, before its id was stored, is deduplicated by Discord.
* :meth:`DiscordDelivery.post` is the one way an image is posted: results, Undo re-posts and
  gallery shares all go through it (fitted to the upload limit, mentions controlled).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import discord

from bot.clock import Clock
from bot.edits import provider_and_model, result_seed
from bot.errors import KontextError
from bot.i18n import Text, t
from bot.i18n import render as word
from bot.images import fit_for_upload
from bot.jobs.events import JobEvent, JobFailed, ResultImage
from bot.jobs.requests import AttachmentUnreadable
from bot.models import Job, MessageKind, MessageRef, NsfwPolicy
from bot.providers.base import Capabilities
from storage.sql import Repository

from . import render
from .language import job_language
from .mentions import NO_MENTIONS, Mentions, mentions_for
from .modlog import ModLog
from .status import StatusBoard
from .views import ButtonCatalog

log = logging.getLogger(__name__)

DEFAULT_UPLOAD_LIMIT = 10 * 1024 * 1024
REQUEST_UPLOAD_LIMIT = 25 * 1024 * 1024 - 256 * 1024  # headroom for the multipart envelope
SETUP_WAIT_SECONDS = 15.0
SETUP_POLL_SECONDS = 0.2  # how often a worker looks for a status message a gateway is posting


class ChannelUnusable(KontextError, code="channel_unusable"):
    """The bot cannot post in the channel a job was asked in."""


@dataclass
class Placement:
    """Where a job's status and result live, and what the requester should know about it."""

    status_message: discord.Message | None
    thread: discord.Thread | None
    where: Text
    notes: list[Text] = field(default_factory=list)


@dataclass(frozen=True)
class Upload:
    """One file to post; a fresh ``discord.File`` is made per attempt (a send closes it)."""

    data: bytes
    name: str
    spoiler: bool = False


class DiscordDelivery:
    def __init__(
        self, *, repo: Repository, clock: Clock, capabilities: Mapping[str, Capabilities]
    ) -> None:
        self.repo = repo
        self.clock = clock
        self.capabilities = capabilities
        self._client: discord.Client | None = None
        self.views = ButtonCatalog()
        self.board = StatusBoard(capabilities, self.views, clock)
        self.modlog = ModLog(repo=repo, capabilities=capabilities)
        self._preparing = 0
        self._setup_done = asyncio.Condition()
        # A worker process: status messages are set up by a gateway process, so a job may be
        # claimed here before its status message and thread are stored.
        self.setup_elsewhere = False
        # A gateway process: jobs run in worker processes, which may end one before its
        # status message is stored here (and so cannot edit it).
        self.engine_elsewhere = False

    # --- lifecycle ------------------------------------------------------------------------

    def bind(self, client: discord.Client) -> None:
        self._client = client
        self.board.bind(client)
        self.modlog.bind(client)

    @property
    def client(self) -> discord.Client:
        if self._client is None:
            raise RuntimeError("DiscordDelivery used before bind()")
        return self._client

    async def close(self) -> None:
        await self.board.close()
        await self.modlog.close()

    async def on_event(self, event: JobEvent) -> None:
        """The engine's event sink (see :class:`bot.discord.status.StatusBoard`)."""
        if self.setup_elsewhere and event.job.status_message_id is None:
            fresh = await self.repo.get_job(event.job.id)
            if fresh is not None and fresh.status_message_id is not None:
                event = event.model_copy(update={"job": fresh})
        await self.board.on_event(event)
        if isinstance(event, JobFailed):
            self.modlog.job_failed(event.job, event.reason_text)

    async def read_attachment(self, url: str) -> bytes:
        """An attachment's bytes, read by the worker before the job's first submit (the
        engine's :class:`~bot.jobs.requests.AttachmentSource`), through the bot's own CDN
        session: the front end queued it by its metadata alone."""
        try:
            return await self.client.http.get_from_cdn(url)
        except discord.HTTPException as err:
            raise AttachmentUnreadable(str(err.status)) from err
        except (aiohttp.ClientError, OSError, TimeoutError) as err:
            raise AttachmentUnreadable(type(err).__name__) from err

    # --- before a job is queued -----------------------------------------------------------

    @staticmethod
    def check_channel(interaction: discord.Interaction[Any]) -> None:
        """Refuse up front when the bot could not post the result in this channel."""
        channel = interaction.channel
        if interaction.guild is None or not isinstance(
            channel, discord.TextChannel | discord.Thread | discord.VoiceChannel
        ):
            return
        perms = interaction.app_permissions
        in_thread = isinstance(channel, discord.Thread)
        send = perms.send_messages_in_threads if in_thread else perms.send_messages
        if not (perms.view_channel and send):
            raise ChannelUnusable(render.CANNOT_POST_HERE)

    @contextlib.asynccontextmanager
    async def preparing(self) -> AsyncIterator[None]:
        """Hold back deliveries of jobs whose status message is being set up right now."""
        self._preparing += 1
        try:
            yield
        finally:
            self._preparing -= 1
            async with self._setup_done:
                self._setup_done.notify_all()

    async def open_status(self, job: Job, interaction: discord.Interaction[Any]) -> Placement:
        """Post the status message where ``interaction`` happened and open its thread."""
        found = interaction.channel
        channel: discord.abc.Messageable = (
            found
            if isinstance(found, discord.abc.Messageable)
            else self.client.get_partial_messageable(job.channel_id)
        )
        language = job_language(job)
        pending, final = self.board.pending_text(job.id)
        text = pending or render.status_queued(
            job.prompt, await self.repo.queue_position(job.id), None, language=language
        )
        if final:
            message = await channel.send(text, allowed_mentions=NO_MENTIONS)
        else:
            view = self.views.status_view(job.id, language=language)
            message = await channel.send(text, view=view, allowed_mentions=NO_MENTIONS)
        thread: discord.Thread | None = None
        notes: list[Text] = []
        if isinstance(channel, discord.Thread):
            thread = channel
        elif isinstance(channel, discord.TextChannel):
            if channel.permissions_for(channel.guild.me).create_public_threads:
                try:
                    thread = await channel.create_thread(
                        name=render.thread_name(job.prompt, language), message=message
                    )
                except discord.HTTPException as err:
                    log.warning("could not create a thread for job %d: %s", job.id, err)
                    notes.append(render.NOTE_THREAD_REFUSED)
            else:
                notes.append(render.NOTE_NO_THREAD_PERMISSION)
        else:
            notes.append(render.NOTE_NO_THREADS_HERE)
        await self._record_status(job, message, text, thread_id=thread.id if thread else None)
        where = (
            t("discord.reply.where_thread", thread=thread.mention)
            if thread
            else t("discord.reply.where_here", link=message.jump_url)
        )
        return Placement(message, thread, where, notes)

    async def open_status_in(
        self, job: Job, channel: discord.abc.Messageable, *, reply_to: int | None = None
    ) -> discord.Message:
        """The status message of a job started by a message (a reply, a remix post), posted
        in ``channel`` (the job's thread or channel), as a reply to ``reply_to`` if given."""
        language = job_language(job)
        pending, final = self.board.pending_text(job.id)
        text = pending or render.status_queued(
            job.prompt, await self.repo.queue_position(job.id), None, language=language
        )
        kwargs: dict[str, Any] = {}
        if reply_to is not None:
            kwargs["reference"] = discord.MessageReference(
                message_id=reply_to,
                channel_id=job.thread_id or job.channel_id,
                fail_if_not_exists=False,
            )
        if not final:
            kwargs["view"] = self.views.status_view(job.id, language=language)
        message = await channel.send(text, allowed_mentions=NO_MENTIONS, **kwargs)
        await self._record_status(job, message, text)
        return message

    async def _record_status(
        self, job: Job, message: discord.Message, text: str, *, thread_id: int | None = None
    ) -> None:
        """Store and index a job's status message, and hand it to the status board."""
        fields: dict[str, object] = {"status_message_id": message.id}
        if thread_id is not None:
            fields["thread_id"] = thread_id
        await self.repo.update_job(job.id, now=self.clock.now(), **fields)
        await self.repo.index_message(
            MessageRef(
                message_id=message.id,
                channel_id=message.channel.id,
                job_id=job.id,
                kind=MessageKind.STATUS,
            ),
            now=self.clock.now(),
        )
        self.board.placed(job.id, message.channel.id, message.id, text)
        if self.engine_elsewhere:
            await self._settle_if_ended(job.id, message, text)

    async def _settle_if_ended(self, job_id: int, message: discord.Message, text: str) -> None:
        """A job a worker ended before its status message was stored: show how it ended."""
        latest = await self.repo.get_job(job_id)
        if latest is None or not latest.status.terminal:
            return
        final = render.status_for_terminal(latest, language=job_language(latest))
        if final == text:
            return
        try:
            await message.edit(content=final, view=None, allowed_mentions=NO_MENTIONS)
        except discord.HTTPException as err:
            log.warning("could not show how job %d ended: %s", job_id, err)

    # --- the result -----------------------------------------------------------------------

    async def _await_setup(self, job: Job) -> Job:
        """The job as stored, once any status message being set up for it exists."""
        loop = asyncio.get_running_loop()  # a safety net in real time, not a schedule
        deadline = loop.time() + SETUP_WAIT_SECONDS
        while True:
            fresh = await self.repo.get_job(job.id) or job
            if fresh.status_message_id is not None or (
                self._preparing == 0 and not self.setup_elsewhere
            ):
                return fresh
            remaining = deadline - loop.time()
            if remaining <= 0:
                return fresh
            if self.setup_elsewhere:  # another process stores it: look again shortly
                remaining = min(remaining, SETUP_POLL_SECONDS)
            async with self._setup_done:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._setup_done.wait(), timeout=remaining)

    async def deliver(self, job: Job, images: Sequence[ResultImage]) -> None:
        """Post the result (once). Raises ``discord.HTTPException`` if Discord refuses."""
        job = await self._await_setup(job)
        outputs = [image.output for image in images]
        if outputs and all(o.message_id is not None for o in outputs):
            log.info("job %d was already delivered; not posting again", job.id)
            return
        stored = {o.index: o for o in await self.repo.outputs_for_job(job.id)}
        if stored and all(o.message_id is not None for o in stored.values()):
            log.info("job %d was already delivered; not posting again", job.id)
            return
        channel = await self._target_channel(job)
        settings = await self.repo.get_guild_settings(job.guild_id)
        notes: list[Text | str] = []
        posted: list[ResultImage] = []
        files: list[Upload] = []
        nsfw_ok = _is_nsfw(channel)
        per_file = self._per_file_limit(job, channel, len(images))
        for image in images:
            spoiler = False
            if image.output.nsfw:
                if settings.nsfw_policy is NsfwPolicy.BLOCK:
                    notes.append(render.NOTE_NSFW_WITHHELD)
                    continue
                if not nsfw_ok:
                    notes.append(render.NOTE_NSFW_AGE_RESTRICTED)
                    continue
                spoiler = True
            upload = await self.fitted(
                image.data, job_id=job.id, index=image.output.index, limit=per_file
            )
            if len(upload.data) != len(image.data):
                notes.append(render.NOTE_REENCODED)
            files.append(Upload(upload.data, upload.name, spoiler))
            posted.append(image)
        notes.extend(await self._batch_notes(job, images))
        if files and not _can_attach(channel):
            await self._deliver_by_dm(job, channel, files, posted, images, notes)
            return
        picks = [i.output.number for i in posted] if job.params.num_images > 1 else []
        if len(picks) > 1:
            notes.insert(0, render.NOTE_BATCH)
        try:
            message = await self._send_result(job, channel, files, notes, picks)
        except (discord.NotFound, discord.Forbidden) as err:
            parent = await self._parent_instead(job, channel, err)
            if parent is None:
                raise
            notes.append(render.NOTE_THREAD_GONE)
            message = await self._send_result(job, parent, files, notes, picks)
        await self._record(job, message, posted, images)
        self.modlog.job_finished(job, message)

    async def _parent_instead(
        self, job: Job, channel: discord.abc.Messageable, err: discord.HTTPException
    ) -> discord.abc.Messageable | None:
        """The channel the command ran in, when posting into the job's thread failed."""
        if getattr(channel, "id", None) != job.thread_id or job.thread_id == job.channel_id:
            return None
        log.warning("job %d: cannot post in thread %s (%s)", job.id, job.thread_id, err.status)
        found = self.client.get_channel(job.channel_id)
        if found is None:
            try:
                found = await self.client.fetch_channel(job.channel_id)
            except discord.HTTPException:
                return None
        return found if isinstance(found, discord.abc.Messageable) else None

    @staticmethod
    def _per_file_limit(job: Job, channel: discord.abc.Messageable, count: int) -> int:
        """The most bytes one of ``count`` files may have: the server's upload limit as the
        front end saw it when the job was queued (a worker has no gateway cache to read the
        server's boost level from), else the cached server's, else Discord's default; and
        the request's limit shared among the files."""
        limit = job.upload_limit
        if limit is None:
            guild = getattr(channel, "guild", None)
            limit = guild.filesize_limit if guild is not None else DEFAULT_UPLOAD_LIMIT
        return min(limit, REQUEST_UPLOAD_LIMIT // max(1, count))

    async def _target_channel(self, job: Job) -> discord.abc.Messageable:
        for channel_id in dict.fromkeys(c for c in (job.thread_id, job.channel_id) if c):
            channel = self.client.get_channel(channel_id)
            if channel is None:
                try:
                    channel = await self.client.fetch_channel(channel_id)
                except (discord.NotFound, discord.Forbidden):
                    log.info("channel %d of job %d is unavailable", channel_id, job.id)
                    continue
            if isinstance(channel, discord.abc.Messageable):
                return channel
        if job.guild_id == 0:
            return await self.client.create_dm(discord.Object(job.user_id))
        raise ChannelUnusable(t("discord.error.no_channel_left", job=job.id))

    async def _send_result(
        self,
        job: Job,
        channel: discord.abc.Messageable,
        files: list[Upload],
        notes: Sequence[Text | str],
        picks: Sequence[int] = (),
    ) -> discord.Message:
        label, model = provider_and_model(self.capabilities, job)
        language = job_language(job)
        caption = render.result_caption(
            prompt=job.prompt,
            requester_id=job.user_id,
            provider_label=label,
            model=model,
            seed=result_seed(job),
            duration=self.clock.now() - (job.started_at or job.created_at),
            notes=list(dict.fromkeys(word(note, language) for note in notes)),
            language=language,
        )
        reference = None
        if job.reply_to_message_id is not None:
            reference = discord.MessageReference(
                message_id=job.reply_to_message_id,
                channel_id=job.channel_id,
                fail_if_not_exists=False,
            )
        return await self.post(
            channel,
            caption,
            files,
            view=await self.result_view(job, picks=picks),
            mentions=_requester_mentions(job),
            nonce=job.delivery_nonce,
            reference=reference,
        )

    async def result_view(self, job: Job, *, picks: Sequence[int] = ()) -> discord.ui.View:
        """The buttons under a result of ``job`` (Undo when it edited an earlier output,
        Share when its server has a gallery, a pick button per posted image of a batch)."""
        gallery = (await self.repo.get_guild_settings(job.guild_id)).gallery_channel_id
        return self.views.result_view(
            job.id,
            undo=job.parent_output_id is not None,
            share=bool(gallery),
            picks=picks,
            language=job_language(job),
        )

    async def _batch_notes(self, job: Job, images: Sequence[ResultImage]) -> list[Text | str]:
        """Which images of a batch failed, and why (the provider's reason, shortened)."""
        if job.params.num_images < 2:
            return []
        have = {image.output.number for image in images}
        missing = [n for n in range(1, job.params.num_images + 1) if n not in have]
        if not missing:
            return []
        count, language = job.params.num_images, job_language(job)
        reasons = {
            item.index + 1: word(item.failure_text(), language)
            for item in await self.repo.batch_items(job.id)
        }
        return [render.batch_failed(n, count, reasons.get(n, ""), language) for n in missing]

    async def fitted(self, data: bytes, *, job_id: int, index: int, limit: int) -> Upload:
        """Output ``index`` of job ``job_id`` as a file of at most ``limit`` bytes."""
        fitted, ext = await fit_for_upload(data, max_bytes=limit)
        return Upload(fitted, f"kontext-{job_id}-{index + 1}.{ext}")

    async def post(
        self,
        channel: discord.abc.Messageable,
        text: str,
        files: Sequence[Upload],
        *,
        view: discord.ui.View | None = None,
        mentions: Mentions = NO_MENTIONS,
        nonce: str | None = None,
        reference: discord.MessageReference | None = None,
    ) -> discord.Message:
        """Post ``text`` with ``files``: the one way the bot posts an image."""
        kwargs: dict[str, Any] = {}
        if view is not None:
            kwargs["view"] = view
        if nonce is not None:
            kwargs["nonce"] = nonce
        if reference is not None:
            kwargs["reference"] = reference
        return await channel.send(
            text,
            files=[
                discord.File(io.BytesIO(f.data), filename=f.name, spoiler=f.spoiler) for f in files
            ],
            allowed_mentions=mentions,
            **kwargs,
        )

    async def _deliver_by_dm(
        self,
        job: Job,
        channel: discord.abc.Messageable,
        files: list[Upload],
        posted: list[ResultImage],
        images: Sequence[ResultImage],
        notes: list[Text | str],
    ) -> None:
        """No Attach Files here: send the images to the requester and say so in the channel."""
        try:
            dm = await self.client.create_dm(discord.Object(job.user_id))
            message = await self._send_result(job, dm, files, notes)
        except discord.HTTPException:
            notes.append(render.NOTE_NO_ATTACH_NO_DM)
            message = await self._send_result(job, channel, [], notes)
            await self._record(job, message, [], images)
            self.modlog.job_finished(job, message)
            return
        await self._record(job, message, posted, images)
        self.modlog.job_finished(job, message, by_dm=True)
        await channel.send(
            render.sent_by_dm(job.user_id, job_language(job)),
            allowed_mentions=_requester_mentions(job),
        )

    async def _record(
        self,
        job: Job,
        message: discord.Message,
        posted: Sequence[ResultImage],
        images: Sequence[ResultImage],
    ) -> None:
        """Store where each output went (before the engine marks the job done)."""
        attachment_of = {
            image.output.id: att.id for image, att in zip(posted, message.attachments, strict=False)
        }
        for image in images:
            await self.repo.set_output_message(
                image.output.id,
                channel_id=message.channel.id,
                message_id=message.id,
                attachment_id=attachment_of.get(image.output.id),
            )
        first = posted[0].output.id if posted else (images[0].output.id if images else None)
        await self.repo.index_message(
            MessageRef(
                message_id=message.id,
                channel_id=message.channel.id,
                job_id=job.id,
                output_id=first,
                kind=MessageKind.RESULT,
            ),
            now=self.clock.now(),
        )
        log.info("job %d delivered as message %d", job.id, message.id)


def _requester_mentions(job: Job) -> Mentions:
    """A result mentions its requester; it pings them only when they want it (the job's
    ``ping``: their preference, else the server's setting, else on)."""
    return mentions_for(job.user_id if job.params.ping else None)


def _is_nsfw(channel: object) -> bool:
    is_nsfw = getattr(channel, "is_nsfw", None)
    return bool(is_nsfw()) if callable(is_nsfw) else False


def _can_attach(channel: object) -> bool:
    guild = getattr(channel, "guild", None)
    if guild is None or not isinstance(channel, discord.abc.GuildChannel | discord.Thread):
        return True
    me = getattr(guild, "me", None)
    if me is None:  # a worker has no gateway cache: Discord's answer to the post decides
        return True
    try:
        return channel.permissions_for(me).attach_files
    except discord.ClientException:  # a thread whose parent channel is not cached
        return True
