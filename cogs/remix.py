"""Edits started by messages: replies to results, remix channels, and ``/kontext-admin remix``.

* A reply to one of the bot's results edits that result (the reply must mention the bot,
  which a reply with ping does, unless the Message Content intent is on: then any reply).
* In a remix channel, a message with image(s) and text is an edit request, and a reply with
  text to any message with an image remixes that image. A post (or reply) in the channel
  itself starts a new chain in a thread of its own; inside such a thread, replies continue it.
* Anything else (chat, replies to ordinary messages outside remix channels) is ignored.

Refusals are answered as a reply to the member's message (no interaction to answer
ephemerally). The job goes through the edit service and the engine like ``/edit``: same
access rules, limits and quotas, same status message and result buttons.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.discord import render
from bot.discord.client import KontextBot
from bot.discord.error_handler import user_message
from bot.discord.interactions import (
    answer,
    image_input,
    is_result_image,
    looks_like_image,
    message_requester,
    queue_and_show,
    requester,
    strip_mention,
)
from bot.discord.language import job_language, public_language, reply_language
from bot.discord.mentions import NO_MENTIONS
from bot.discord.translator import described
from bot.edits import Fallback, ImageGone
from bot.errors import BadRequest
from bot.i18n import render as word
from bot.i18n import t
from bot.models import Job, RemixChannel

log = logging.getLogger(__name__)


class RemixCog(commands.Cog):
    """Listens to messages: replies to results, and posts and replies in remix channels."""

    def __init__(self, bot: KontextBot) -> None:
        self.bot = bot

    @commands.Cog.listener()
    async def on_message(self, message: discord.Message) -> None:
        if message.author.bot or message.webhook_id is not None or message.guild is None:
            return
        channel = message.channel
        if not isinstance(channel, discord.TextChannel | discord.Thread):
            return
        perms = channel.permissions_for(message.guild.me)
        in_thread = isinstance(channel, discord.Thread)
        can_send = perms.send_messages_in_threads if in_thread else perms.send_messages
        if not (perms.view_channel and can_send):
            return  # nowhere to answer: /edit refuses the same up front
        try:
            await self._handle(message)
        except Exception as error:
            await self._refuse(message, error)

    @commands.Cog.listener()
    async def on_command_error(self, ctx: commands.Context[Any], error: Exception) -> None:
        """Messages that start with the bot's mention ("@Kontext a fox" in a remix channel)
        reach the prefix-command parser too; there are no prefix commands, so that is no
        error. (Having this listener also replaces discord.py's default logging.)"""
        if not isinstance(error, commands.CommandNotFound):
            log.error("prefix command error", exc_info=error)

    async def _handle(self, message: discord.Message) -> None:
        me = self.bot.user
        is_reply = message.type is discord.MessageType.reply and message.reference is not None
        if me is None or not (is_reply or message.attachments):
            return  # plain chat: not a request anywhere (and no database read per message)
        channel = message.channel
        parent_id = channel.parent_id if isinstance(channel, discord.Thread) else None
        remix = await self.bot.edits.remix_channel(channel.id, parent_id)
        mentioned = any(user.id == me.id for user in message.mentions)
        prompt = strip_mention(message.content, me.id)
        reference = message.reference
        if is_reply and reference is not None:
            if remix is None and not (mentioned or self.bot.settings.message_content):
                return  # without Message Content the bot only sees replies that ping it
            await self._on_reply(message, reference, remix, prompt, mentioned)
        elif remix is not None:
            images = [a for a in message.attachments if looks_like_image(a)]
            if not images or not prompt:
                return  # chat, or an image without words: nothing to do
            await self._remix(message, prompt, remix, message.id, images, [])

    async def _on_reply(
        self,
        message: discord.Message,
        reference: discord.MessageReference,
        remix: RemixChannel | None,
        prompt: str,
        mentioned: bool,
    ) -> None:
        target_id = reference.message_id
        if target_id is None:
            return
        result = await self.bot.edits.result_of(target_id)
        resolved = reference.resolved
        if isinstance(resolved, discord.DeletedReferencedMessage):
            if remix is not None or mentioned or result is not None:
                raise ImageGone(t("discord.cog.reply_deleted"))
            return
        who = message_requester(message)
        own = [a for a in message.attachments if looks_like_image(a)]
        if result is not None and result.output_id is not None:
            if not prompt:
                raise BadRequest(t("discord.cog.reply_no_words"))
            output_id = result.output_id
            fallback = self._fallback(reference.channel_id or message.channel.id, target_id)
            await self._start(
                message,
                remix,
                lambda reply_to: self.bot.edits.reply(
                    who,
                    prompt,
                    output_id,
                    [image_input(a, message.id) for a in own],
                    reply_to_message_id=reply_to,
                    fallback=fallback,
                    remix=remix,
                ),
            )
            return
        if remix is None or not prompt:
            return  # a reply to an ordinary message outside remix channels: not for us
        target = resolved if isinstance(resolved, discord.Message) else None
        if target is None or not target.attachments:
            target = await self._fetch(reference.channel_id or message.channel.id, target_id)
        if target is None:
            return  # gone since (a deleted message is answered above)
        theirs = [a for a in target.attachments if looks_like_image(a)]
        if not theirs:
            return  # a reply to a message without an image is conversation
        await self._remix(message, prompt, remix, target.id, theirs, own)

    async def _remix(
        self,
        message: discord.Message,
        prompt: str,
        remix: RemixChannel,
        source_id: int,
        images: list[discord.Attachment],
        extra: list[discord.Attachment],
    ) -> Job:
        """A remix of ``images`` (of message ``source_id``), ``extra`` (the member's own
        message's images) after them."""
        who = message_requester(message)
        inputs = [image_input(a, source_id) for a in images]
        more = [image_input(a, message.id) for a in extra]
        return await self._start(
            message,
            remix,
            lambda reply_to: self.bot.edits.remix(
                who, prompt, inputs, remix=remix, reply_to_message_id=reply_to, extra=more
            ),
        )

    async def _start(
        self,
        message: discord.Message,
        remix: RemixChannel | None,
        submit: Callable[[int | None], Awaitable[Job]],
    ) -> Job:
        """Queue the job and open its status: in a new thread for a new chain in a remix
        channel, else in this channel (thread) as a reply to the member's message."""
        new_thread = remix is not None and not isinstance(message.channel, discord.Thread)
        delivery = self.bot.delivery

        async def show(job: Job) -> Job:
            channel: discord.abc.Messageable = message.channel
            if new_thread:
                try:
                    name = render.thread_name(job.prompt, job_language(job))
                    thread = await message.create_thread(name=name)
                except discord.HTTPException as err:
                    log.warning("no thread for remix job %d: %s", job.id, err)
                else:
                    job = await self.bot.edits.place(job.id, thread_id=thread.id)
                    channel = thread
            await delivery.open_status_in(job, channel, reply_to=job.reply_to_message_id)
            return job

        reply_to = None if new_thread else message.id
        return await queue_and_show(delivery, self.bot.edits, lambda: submit(reply_to), show)

    def _fallback(self, channel_id: int, message_id: int) -> Fallback:
        """Reads the result's image again from a freshly fetched message (fresh URL)."""

        async def read() -> bytes | None:
            fresh = await self._fetch(channel_id, message_id)
            if fresh is None:
                return None
            for attachment in fresh.attachments:
                if is_result_image(attachment):
                    try:
                        return await attachment.read()
                    except discord.HTTPException as err:
                        log.info("attachment of message %d unreadable: %s", message_id, err)
            return None

        return read

    async def _fetch(self, channel_id: int, message_id: int) -> discord.Message | None:
        channel = self.bot.get_partial_messageable(channel_id)
        try:
            return await channel.fetch_message(message_id)
        except (discord.NotFound, discord.Forbidden):
            return None

    async def _refuse(self, message: discord.Message, error: BaseException) -> None:
        language = await public_language(self.bot, message.guild)
        text = user_message(error, context=f"message {message.id}", language=language)
        try:
            await message.reply(text, allowed_mentions=NO_MENTIONS, mention_author=False)
        except discord.HTTPException:
            log.warning("could not answer message %d in channel %d", message.id, message.channel.id)


class RemixGroup(app_commands.Group, name="remix", description="Remix channels and the gallery"):
    """``/kontext-admin remix add|remove|list|gallery`` (changes need Manage Server)."""

    def __init__(self, bot: KontextBot) -> None:
        super().__init__()
        self.bot = bot

    @app_commands.command(description="Make a channel a remix channel (Manage Server)")
    @described("kontext-admin remix add")
    async def add(
        self,
        interaction: discord.Interaction[Any],
        channel: discord.TextChannel,
        style: app_commands.Range[str, 1, 300] | None = None,
    ) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        added = await self.bot.edits.add_remix_channel(requester(interaction), channel.id, style)
        settings = await self.bot.edits.guild_settings(interaction.guild_id or 0)
        allowed = settings.allowed_channel_ids
        text = render.remix_added_text(
            channel.mention,
            added,
            restricted=bool(allowed) and channel.id not in allowed,
            message_content=self.bot.settings.message_content,
            language=await reply_language(interaction),
        )
        await answer(interaction, text)

    @app_commands.command(description="Stop a channel being a remix channel (Manage Server)")
    @described("kontext-admin remix remove")
    async def remove(
        self, interaction: discord.Interaction[Any], channel: discord.TextChannel
    ) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        removed = await self.bot.edits.remove_remix_channel(requester(interaction), channel.id)
        text = (
            t("discord.cog.remix_removed", channel=channel.mention)
            if removed
            else t("discord.cog.remix_not_found", channel=channel.mention)
        )
        await answer(interaction, word(text, await reply_language(interaction)))

    @app_commands.command(name="list", description="This server's remix channels and gallery")
    async def list_(self, interaction: discord.Interaction[Any]) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        who = requester(interaction)
        channels = await self.bot.edits.list_remix_channels(who.guild_id)
        gallery = await self.bot.edits.gallery_of(who.guild_id)
        language = await reply_language(interaction)
        await answer(interaction, render.remix_list_text(channels, gallery, language))

    @app_commands.command(description="Where starred results are shared (Manage Server)")
    @described("kontext-admin remix gallery")
    async def gallery(
        self, interaction: discord.Interaction[Any], channel: discord.TextChannel | None = None
    ) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        await self.bot.edits.set_gallery(requester(interaction), channel.id if channel else None)
        text = (
            t("discord.cog.gallery_set", channel=channel.mention)
            if channel
            else t("discord.cog.gallery_off")
        )
        await answer(interaction, word(text, await reply_language(interaction)))


async def setup(bot: KontextBot) -> None:
    await bot.add_cog(RemixCog(bot))
    bot.admin_group.add_command(RemixGroup(bot))


async def teardown(bot: KontextBot) -> None:
    bot.admin_group.remove_command("remix")
