"""The status message of each job, kept in step with the engine's events.

:meth:`StatusBoard.on_event` is the engine's event sink. It renders the event into the
status text ("queued — position N, about T" → "editing…" → done / failed with the reason) and
leaves the Discord edit to one task per job, which sends only the newest text: a burst of
events costs at most one edit in flight and one queued. Every edit waits for the channel's
budget (:class:`~bot.discord.edit_budget.ChannelBudget`), so a burst of jobs in one channel
never runs into Discord's rate limits; a waiting edit sends the newest text when its turn
comes. When the queue moves (a job starts or ends), the waiting jobs of that server are shown
their new position and ETA (:meth:`StatusBoard.follow_queue`). Edits use the bot token (the
message's channel and id, stored on the job), so they keep working after the interaction token
expired and after a restart. The Cancel button is removed once the job has ended.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

import discord

from bot.clock import Clock, SystemClock
from bot.edits import provider_label
from bot.i18n import DEFAULT_LANGUAGE
from bot.i18n import render as word
from bot.jobs import events
from bot.models import Job
from bot.providers.base import Capabilities

from . import render
from .edit_budget import ChannelBudget
from .language import job_language
from .mentions import NO_MENTIONS
from .views import ButtonCatalog

log = logging.getLogger(__name__)


@dataclass
class _Status:
    text: str | None = None  # what the message should say
    final: bool = False
    shown: str | None = None  # what it says
    channel_id: int | None = None
    message_id: int | None = None
    task: asyncio.Task[None] | None = None
    waiting: Job | None = None  # the job while it is queued (its position is followed)
    language: str = DEFAULT_LANGUAGE  # the job's public language (its Cancel button's label)


#: The engine's position and ETA of a queued job.
QueueEta = Callable[[Job], Awaitable[tuple[int | None, float | None]]]


class StatusBoard:
    def __init__(
        self,
        capabilities: Mapping[str, Capabilities],
        views: ButtonCatalog,
        clock: Clock | None = None,
    ) -> None:
        self.capabilities = capabilities
        self.views = views
        self._client: discord.Client | None = None
        self._statuses: dict[int, _Status] = {}
        self.budget = ChannelBudget(clock or SystemClock())
        self._queue_eta: QueueEta | None = None
        self._moved: set[int] = set()
        self._refreshing: dict[int, asyncio.Task[None]] = {}

    def follow_queue(self, queue_eta: QueueEta) -> None:
        """Show waiting jobs their new position and ETA whenever the queue moves."""
        self._queue_eta = queue_eta

    def bind(self, client: discord.Client) -> None:
        self._client = client

    @property
    def client(self) -> discord.Client:
        if self._client is None:
            raise RuntimeError("StatusBoard used before bind()")
        return self._client

    def provider_label(self, name: str) -> str:
        return provider_label(self.capabilities, name)

    async def close(self) -> None:
        tasks = [s.task for s in self._statuses.values() if s.task and not s.task.done()]
        tasks.extend(t for t in self._refreshing.values() if not t.done())
        self._refreshing.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._statuses.clear()

    @property
    def editing(self) -> int:
        """How many status messages have an edit in flight or waiting for the budget."""
        return sum(1 for s in self._statuses.values() if s.task is not None and not s.task.done())

    def pending_text(self, job_id: int) -> tuple[str | None, bool]:
        """The text an event asked for before the message existed, and whether it is final."""
        status = self.status(job_id)
        return status.text, status.final

    def placed(self, job_id: int, channel_id: int, message_id: int, shown: str) -> None:
        """The status message now exists and shows ``shown``; catch up with newer events."""
        status = self.status(job_id)
        status.channel_id, status.message_id, status.shown = channel_id, message_id, shown
        self.kick(job_id)

    def status(self, job_id: int) -> _Status:
        return self._statuses.setdefault(job_id, _Status())

    async def on_event(self, event: events.JobEvent) -> None:
        """The engine's sink: remember the newest text and let the job's task edit it."""
        rendered = self._render(event)
        if rendered is None:
            return
        status = self.status(event.job.id)
        if status.final:
            return
        status.text, status.final = rendered
        status.language = job_language(event.job)
        status.waiting = event.job if isinstance(event, events.JobQueued) else None
        if status.message_id is None and event.job.status_message_id is not None:
            status.channel_id = event.job.channel_id
            status.message_id = event.job.status_message_id
        self.kick(event.job.id)
        if isinstance(event, events.JobStarted) or status.final:
            self._queue_moved(event.job.guild_id)

    def _queue_moved(self, guild_id: int) -> None:
        """A job of ``guild_id`` started or ended: one task re-words the positions of those
        waiting there (moves meanwhile are folded into its next round)."""
        if self._queue_eta is None:
            return
        self._moved.add(guild_id)
        task = self._refreshing.get(guild_id)
        if task is None or task.done():
            self._refreshing[guild_id] = asyncio.create_task(
                self._refresh(guild_id), name=f"queue-{guild_id}"
            )

    async def _refresh(self, guild_id: int) -> None:
        while guild_id in self._moved:
            self._moved.discard(guild_id)
            try:
                await self._reword_waiting(guild_id)
            except Exception:  # a storage hiccup: the next move re-words them again
                log.exception("could not refresh the queue positions of guild %d", guild_id)

    async def _reword_waiting(self, guild_id: int) -> None:
        assert self._queue_eta is not None
        for job_id, status in list(self._statuses.items()):
            job = status.waiting
            if job is None or job.guild_id != guild_id or status.final:
                continue
            position, eta = await self._queue_eta(job)
            if status.waiting is not job:  # it moved on meanwhile
                continue
            status.text = render.status_queued(job.prompt, position, eta, job_language(job))
            self.kick(job_id)

    def _render(self, event: events.JobEvent) -> tuple[str, bool] | None:
        job = event.job
        prompt, lang = job.prompt, job_language(job)
        if isinstance(event, events.JobQueued):
            return render.status_queued(prompt, event.position, event.eta_seconds, lang), False
        if isinstance(event, events.JobStarted):
            label = self.provider_label(job.provider)
            return render.status_running(prompt, None, label, lang), False
        if isinstance(event, events.JobProgress):
            label = self.provider_label(job.provider)
            return render.status_running(prompt, event.progress, label, lang), False
        if isinstance(event, events.JobDelayed):
            retry_in = event.retry_at - event.at
            return render.status_delayed(
                prompt, word(event.reason_text, lang), retry_in, lang
            ), False
        if isinstance(event, events.JobFallback):
            return render.status_fallback(
                prompt,
                self.provider_label(event.from_provider),
                self.provider_label(event.to_provider),
                lang,
            ), False
        if isinstance(event, events.JobPaused):
            return render.status_paused(prompt, word(event.reason_text, lang), lang), False
        if isinstance(event, events.JobDone):
            started = job.started_at or job.created_at
            return render.status_done(prompt, event.at - started, language=lang), True
        if isinstance(event, events.JobFailed):
            return render.status_failed(prompt, word(event.reason_text, lang), lang), True
        if isinstance(event, events.JobCancelled):
            return render.status_cancelled(prompt, event.by_user_id, lang), True
        if isinstance(event, events.JobExpired):
            return render.status_expired(prompt, lang), True
        return None

    def kick(self, job_id: int) -> None:
        status = self.status(job_id)
        if status.task is None or status.task.done():
            status.task = asyncio.create_task(self._flush(job_id), name=f"status-{job_id}")

    async def _flush(self, job_id: int) -> None:
        """Edit the status message until it shows the newest text (one edit at a time)."""
        status = self.status(job_id)
        if status.message_id is None:
            return  # placed() kicks again once the message exists
        while status.text is not None and status.text != status.shown:
            assert status.channel_id is not None
            await self.budget.take(status.channel_id)
            text, final = status.text, status.final  # the newest, once it is our turn
            channel = self.client.get_partial_messageable(status.channel_id)
            view = None if final else self.views.status_view(job_id, language=status.language)
            try:
                await channel.get_partial_message(status.message_id).edit(
                    content=text,
                    view=view,
                    allowed_mentions=NO_MENTIONS,
                )
            except discord.NotFound:
                log.info("status message of job %d is gone", job_id)
                status.shown = text
                break
            except discord.HTTPException as err:
                log.warning("could not update the status of job %d: %s", job_id, err)
                break
            status.shown = text
        if status.final and status.shown == status.text:
            self._statuses.pop(job_id, None)
