"""The moderation log: one post per finished, failed or blocklist-refused request, in the
channel a server chose (``GuildSettings.modlog_channel_id``; none: nothing is posted).

Posts go through REST to the stored channel id (``get_partial_messageable``), so a worker
process without a gateway cache logs the jobs it delivers like any other process. Each post
runs in a task of its own: delivery and the member's answer never wait for it, and a post
that fails (the channel was deleted, a permission is missing) is logged for the operator and
changes nothing else. Every post pings nobody; prompts and rules are escaped. Entries are
worded in the server's public language (the one a job recorded when it was queued).

Thumbnails are embeds that point at the result message's own attachments, so nothing is
uploaded twice (and no upload limit applies). Images posted as spoilers (flagged NSFW) get
no thumbnail.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine, Mapping, Sequence
from typing import Any

import discord

from bot.creative_models import BlockedPrompt
from bot.edits import provider_and_model
from bot.i18n import Text, language_for, render
from bot.models import Job
from bot.providers.base import Capabilities
from storage.sql import Repository

from . import community_text
from .community_text import FinishedEntry, ModLogEntry
from .language import job_language, pinned_language, public_language
from .mentions import NO_MENTIONS

log = logging.getLogger(__name__)

#: How long closing waits for posts still on their way.
CLOSE_WAIT_SECONDS = 5.0
#: Thumbnails per entry (a batch has at most 4 images; Discord allows 10 embeds).
MAX_THUMBNAILS = 4


def jump_link(guild_id: int, channel_id: int, message_id: int) -> str:
    return f"https://discord.com/channels/{guild_id}/{channel_id}/{message_id}"


class ModLog:
    def __init__(self, *, repo: Repository, capabilities: Mapping[str, Capabilities]) -> None:
        self.repo = repo
        self.capabilities = capabilities
        self._client: discord.Client | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def bind(self, client: discord.Client) -> None:
        self._client = client

    async def settle(self) -> None:
        """Wait for every post on its way (tests; closing)."""
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def close(self) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.settle(), timeout=CLOSE_WAIT_SECONDS)
        for task in self._tasks:
            task.cancel()

    # --- what is logged -------------------------------------------------------------------

    def job_finished(self, job: Job, message: discord.Message, *, by_dm: bool = False) -> None:
        """``job`` was delivered as ``message`` (in the member's DMs when ``by_dm``)."""
        self._spawn(self._finished(job, message, by_dm=by_dm), job.id)

    def job_failed(self, job: Job, reason: Text | str) -> None:
        self._spawn(self._failed(job, reason), job.id)

    def prompt_blocked(self, refusal: BlockedPrompt) -> None:
        """The core's refusal log (see ``bot.edits.base.RefusalLog``)."""
        self._spawn(self._blocked(refusal), None)

    async def _finished(self, job: Job, message: discord.Message, *, by_dm: bool) -> None:
        thumbnails = [a.url for a in message.attachments if not a.is_spoiler()]
        label, model = provider_and_model(self.capabilities, job)
        done = FinishedEntry(
            job=job,
            provider_label=f"{label} ({model})" if model else label,
            link=None if by_dm else jump_link(job.guild_id, message.channel.id, message.id),
            shown=min(len(thumbnails), MAX_THUMBNAILS),
            hidden=len(message.attachments) - len(thumbnails),
        )
        entry = community_text.finished_entry(done, job_language(job))
        await self._post(job.guild_id, entry, thumbnails[:MAX_THUMBNAILS])

    async def _failed(self, job: Job, reason: Text | str) -> None:
        language = job_language(job)
        entry = community_text.failed_entry(job, render(reason, language), language)
        await self._post(job.guild_id, entry)

    async def _blocked(self, refusal: BlockedPrompt) -> None:
        guild = self._client.get_guild(refusal.guild_id) if self._client else None
        if guild is not None:
            language = await public_language(self._client, guild)
        else:  # a worker has no gateway cache: the pinned language, else the default
            language = language_for(await pinned_language(self._client, refusal.guild_id))
        await self._post(refusal.guild_id, community_text.blocked_entry(refusal, language))

    # --- posting --------------------------------------------------------------------------

    def _spawn(self, post: Coroutine[Any, Any, None], job_id: int | None) -> None:
        if self._client is None:  # not connected (the CLI): there is nowhere to post
            post.close()
            return
        task = asyncio.get_running_loop().create_task(self._guarded(post, job_id))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @staticmethod
    async def _guarded(post: Coroutine[Any, Any, None], job_id: int | None) -> None:
        try:
            await post
        except Exception:
            log.exception("could not write the moderation log entry of job %s", job_id)

    async def _post(
        self, guild_id: int, entry: ModLogEntry, thumbnails: Sequence[str] = ()
    ) -> None:
        channel_id = (await self.repo.get_guild_settings(guild_id)).modlog_channel_id
        if channel_id is None or self._client is None:
            return
        embeds = [discord.Embed(description=entry.prompt)]
        for index, url in enumerate(thumbnails):
            if index:
                embeds.append(discord.Embed())
            embeds[-1].set_thumbnail(url=url)
        channel = self._client.get_partial_messageable(channel_id, guild_id=guild_id)
        try:
            await channel.send(entry.content, embeds=embeds, allowed_mentions=NO_MENTIONS)
        except discord.HTTPException as err:
            log.warning(
                "moderation log of guild %d: cannot post in channel %d (HTTP %s: %s); "
                "a server manager can pick another with /kontext-admin modlog",
                guild_id,
                channel_id,
                err.status,
                err.text or "no reason given",
            )
