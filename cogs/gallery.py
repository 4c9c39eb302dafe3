"""The gallery: the Share button and ⭐ reactions post a result once to the server's gallery
channel, through the delivery. The bot adds its own ⭐ to the original, which is how a second
star knows it was shared (no extra table). Nobody is pinged."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import discord
from discord.ext import commands

from bot.discord import render
from bot.discord.client import KontextBot, bot_of
from bot.discord.custom_ids import Action
from bot.discord.delivery import DEFAULT_UPLOAD_LIMIT
from bot.discord.interactions import answer, is_result_image
from bot.discord.language import job_language, reply_language
from bot.discord.views import JobButton
from bot.edits import NoHistory
from bot.i18n import render as word
from bot.i18n import t

log = logging.getLogger(__name__)

STAR = "⭐"
GUILD_CHANNELS = (discord.TextChannel, discord.Thread, discord.VoiceChannel)


class ShareButton(JobButton, action=Action.SHARE):
    emoji = STAR

    async def pressed(self, interaction: discord.Interaction[Any]) -> None:
        if interaction.message is None or interaction.guild_id is None:
            raise NoHistory(t("discord.cog.nothing_to_share"))
        bot = bot_of(interaction)
        cog = bot.get_cog(GalleryCog.__cog_name__)
        if not isinstance(cog, GalleryCog):  # pragma: no cover - the button comes with the cog
            raise NoHistory(t("discord.cog.sharing_unavailable"))
        posted = await cog.share(
            interaction.message, shared_by=interaction.user.id, job_id=self.job_id
        )
        shared = t("discord.cog.shared", link=posted.jump_url)
        await answer(interaction, word(shared, await reply_language(interaction)))


class GalleryCog(commands.Cog):
    """Shares results to the guild's gallery channel, once each."""

    def __init__(self, bot: KontextBot) -> None:
        self.bot = bot
        self._lock = asyncio.Lock()

    async def share(
        self, message: discord.Message, *, shared_by: int, job_id: int | None = None
    ) -> discord.Message:
        """Post ``message``'s result to the gallery; raises with a reason when it can't."""
        guild_id = message.guild.id if message.guild else 0
        found = await self.bot.edits.shareable(guild_id, message.id, job_id=job_id)
        async with self._lock:  # two stars at once must not post twice
            fresh = await self._fresh(message)
            if any(str(r.emoji) == STAR and r.me for r in fresh.reactions):
                raise NoHistory(t("discord.cog.already_shared"))
            data = found.data
            if data is None:
                images = [a for a in fresh.attachments if is_result_image(a)]
                if not images:
                    raise NoHistory(t("discord.cog.image_gone"))
                data = await images[0].read()
            gallery_id = found.gallery_channel_id
            gallery = self.bot.get_channel(gallery_id) or await self.bot.fetch_channel(gallery_id)
            if not isinstance(gallery, discord.abc.Messageable):
                raise NoHistory(t("discord.cog.gallery_unusable"))
            limit = gallery.guild.filesize_limit if isinstance(gallery, GUILD_CHANNELS) else 0
            delivery = self.bot.delivery
            upload = await delivery.fitted(
                data,
                job_id=found.job.id,
                index=found.output.index,
                limit=limit or DEFAULT_UPLOAD_LIMIT,
            )
            caption = render.gallery_caption(
                prompt=found.job.prompt,
                requester_id=found.job.user_id,
                shared_by=shared_by,
                link=fresh.jump_url,
                language=job_language(found.job),
            )
            posted = await delivery.post(gallery, caption, [upload])
            try:
                await fresh.add_reaction(STAR)
            except discord.HTTPException as err:
                log.warning("could not mark message %d as shared: %s", fresh.id, err)
        log.info("output %d shared to the gallery as message %d", found.output.id, posted.id)
        return posted

    @staticmethod
    async def _fresh(message: discord.Message) -> discord.Message:
        try:
            return await message.channel.fetch_message(message.id)
        except discord.HTTPException:
            return message

    @commands.Cog.listener()
    async def on_raw_reaction_add(self, event: discord.RawReactionActionEvent) -> None:
        me = self.bot.user
        if str(event.emoji) != STAR or event.guild_id is None or me is None:
            return
        if event.user_id == me.id:
            return
        if await self.bot.edits.result_of(event.message_id) is None:
            return
        if await self.bot.edits.gallery_of(event.guild_id) is None:
            return
        channel = self.bot.get_partial_messageable(event.channel_id, guild_id=event.guild_id)
        try:
            message = await channel.fetch_message(event.message_id)
            await self.share(message, shared_by=event.user_id)
        except NoHistory as err:
            log.info("star on message %d not shared: %s", event.message_id, err)
        except discord.HTTPException as err:
            log.warning("star on message %d not shared: %s", event.message_id, err)
        except Exception:
            log.exception("star on message %d failed", event.message_id)


async def setup(bot: KontextBot) -> None:
    await bot.add_cog(GalleryCog(bot))
    bot.add_buttons(ShareButton)


async def teardown(bot: KontextBot) -> None:
    bot.remove_buttons(ShareButton)
