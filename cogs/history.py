"""The edit history in Discord: History, Undo and Share buttons, the "Edit history" message
menu, ``/kontext history``, and ⭐ reactions that share results to the gallery channel.

* **History** (button, menu, command) answers privately with the contact sheet of the chain
  (one numbered, captioned tile per step) and the numbered prompts, branches marked.
* ``/kontext history`` cannot be a reply (slash commands never are), so it takes an optional
  ``message`` (a link to or the id of a result) and otherwise shows the newest result in the
  channel or thread it runs in. The "Edit history" message menu is the way to point at one.
* **Undo** re-posts the parent output as a new result message (see :mod:`bot.iterate`).
* **Share** and a ⭐ reaction post the result once to the gallery channel; the bot adds its own
  ⭐ to the original, which is how a second star knows it was shared (no extra table).
"""

from __future__ import annotations

import asyncio
import io
import logging
import re
from typing import TYPE_CHECKING, Any, cast

import discord
from discord import app_commands
from discord.ext import commands

from bot import custom_ids, render
from bot.custom_ids import Action
from bot.discord_delivery import DEFAULT_UPLOAD_LIMIT
from bot.errors import KontextError
from bot.images import fit_for_upload
from bot.mentions import NO_MENTIONS
from cogs.buttons import JobButton, result_view
from cogs.common import requester
from cogs.remix import is_result_image

if TYPE_CHECKING:
    from bot.client import KontextBot

log = logging.getLogger(__name__)

STAR = "⭐"
GUILD_CHANNELS = (discord.TextChannel, discord.Thread, discord.VoiceChannel)
SCAN_LIMIT = 50  # how far back /kontext history looks for the newest result
_MESSAGE_ID = re.compile(r"(?:/(?P<channel>\d{15,20})/)?(?P<message>\d{15,20})/?\s*$")


class NoHistory(KontextError):
    code = "no_history"


def _bot(interaction: discord.Interaction[Any]) -> KontextBot:
    return cast("KontextBot", interaction.client)


class _SecondRow(JobButton, template=r"kx:(?!)"):
    """A result button of this module, on the result's second row."""

    def __init__(self, job_id: int) -> None:
        super().__init__(job_id)
        self.item.row = 1


class HistoryButton(_SecondRow, template=custom_ids.template(Action.HISTORY)):
    action = Action.HISTORY
    label = "History"
    emoji = "🧬"

    async def pressed(self, interaction: discord.Interaction[Any]) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        message_id = interaction.message.id if interaction.message is not None else None
        output_id = await _bot(interaction).iterate.output_of(self.job_id, message_id)
        await send_history(interaction, output_id)


class UndoButton(_SecondRow, template=custom_ids.template(Action.UNDO)):
    action = Action.UNDO
    label = "Undo"
    emoji = "↩️"

    async def pressed(self, interaction: discord.Interaction[Any]) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        bot = _bot(interaction)
        who = requester(interaction)
        target = await bot.iterate.undo(who, self.job_id)
        channel = interaction.channel
        if not isinstance(channel, discord.abc.Messageable):
            raise NoHistory("I can't post here, so I can't undo here.")
        gallery = await bot.iterate.gallery_of(who.guild_id)
        caption = (
            f"↩️ **Back to step {target.step}:** {render.quote_prompt(target.job.prompt, 300)}\n"
            f"{render.mention_user(who.user_id)} undid the last edit · reply to this image to "
            "continue from here"
        )
        view = result_view(
            target.job.id, undo=target.job.parent_output_id is not None, share=bool(gallery)
        )
        data, ext = await fit_for_upload(target.data, max_bytes=interaction.filesize_limit)
        name = f"kontext-{target.job.id}-{target.output.index + 1}.{ext}"
        message = await channel.send(
            render.shorten(caption, render.MESSAGE_LIMIT),
            file=discord.File(io.BytesIO(data), filename=name),
            view=view,
            allowed_mentions=NO_MENTIONS,  # the one who pressed Undo is here already
        )
        await bot.iterate.index_result(
            message_id=message.id, channel_id=message.channel.id, output=target.output
        )
        await interaction.followup.send(
            f"Back to step {target.step}: {message.jump_url}",
            ephemeral=True,
            allowed_mentions=NO_MENTIONS,
        )


class ShareButton(_SecondRow, template=custom_ids.template(Action.SHARE)):
    action = Action.SHARE
    label = "Share"
    emoji = STAR

    async def pressed(self, interaction: discord.Interaction[Any]) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        if interaction.message is None or interaction.guild_id is None:
            raise NoHistory("There is nothing to share here.")
        posted = await _bot(interaction).gallery.share(
            interaction.message, shared_by=interaction.user.id
        )
        await interaction.followup.send(
            f"Shared to the gallery: {posted.jump_url}",
            ephemeral=True,
            allowed_mentions=NO_MENTIONS,
        )


HISTORY_ITEMS: tuple[type[JobButton], ...] = (HistoryButton, UndoButton, ShareButton)


def history_buttons(job_id: int, *, undo: bool, share: bool) -> list[JobButton]:
    """The second row of a result: History, and Undo and Share when they apply."""
    items: list[JobButton] = [HistoryButton(job_id)]
    if undo:
        items.append(UndoButton(job_id))
    if share:
        items.append(ShareButton(job_id))
    return items


async def send_history(interaction: discord.Interaction[Any], output_id: int) -> None:
    """Answer (privately) with the contact sheet and the numbered chain of ``output_id``."""
    view = await _bot(interaction).iterate.history(output_id)
    noun = "step" if view.steps == 1 else "steps"
    await interaction.followup.send(
        f"**Edit history** — {view.steps} {noun}, the original first\n{view.text}",
        file=discord.File(io.BytesIO(view.sheet), filename="kontext-history.png"),
        ephemeral=True,
        allowed_mentions=NO_MENTIONS,
    )


@app_commands.describe(message="A link to or the id of a result message (default: the newest)")
async def _history_command(
    interaction: discord.Interaction[Any], message: str | None = None
) -> None:
    await interaction.response.defer(ephemeral=True, thinking=True)
    bot = _bot(interaction)
    if message is not None:
        match = _MESSAGE_ID.search(message.strip())
        if match is None:
            raise NoHistory(
                "Give a message link (right-click a result → Copy Message Link) or a message "
                "id, or run the command without it in the result's thread."
            )
        ref = await bot.iterate.result_of(int(match["message"]))
        if ref is None or ref.output_id is None:
            raise NoHistory("That message is not one of my results, so it has no edit history.")
        await send_history(interaction, ref.output_id)
        return
    channel = interaction.channel
    me = bot.user
    if isinstance(channel, discord.abc.Messageable) and me is not None:
        async for found in channel.history(limit=SCAN_LIMIT):
            if found.author.id != me.id or not found.attachments:
                continue
            ref = await bot.iterate.result_of(found.id)
            if ref is not None and ref.output_id is not None:
                await send_history(interaction, ref.output_id)
                return
    raise NoHistory(
        "I found no result of mine in the last messages here. Run it in a result's thread, "
        "pass a message link, or right-click a result → Apps → Edit history."
    )


def history_command() -> app_commands.Command[Any, ..., None]:
    """``/kontext history [message]`` (a fresh object per bot: commands get a parent)."""
    return app_commands.Command(
        name="history",
        description="The edit history of a result (default: the newest one here)",
        callback=_history_command,
    )


class Gallery:
    """Shares results to the guild's gallery channel, once each."""

    def __init__(self, bot: KontextBot) -> None:
        self.bot = bot
        self._lock = asyncio.Lock()

    async def share(self, message: discord.Message, *, shared_by: int) -> discord.Message:
        """Post ``message``'s result to the gallery; raises with a reason when it can't."""
        guild_id = message.guild.id if message.guild else 0
        gallery_id = await self.bot.iterate.gallery_of(guild_id)
        if gallery_id is None:
            raise NoHistory(
                "This server has no gallery channel. An admin can set one with "
                "`/kontext remix gallery`."
            )
        ref = await self.bot.iterate.result_of(message.id)
        found = (
            await self.bot.iterate.output_bytes(ref.output_id) if ref and ref.output_id else None
        )
        if found is None:
            raise NoHistory("That message is not one of my results, so it can't be shared.")
        job, output, data = found
        if output.nsfw:
            raise NoHistory("Results flagged as NSFW are not shared to the gallery.")
        async with self._lock:  # two stars at once must not post twice
            fresh = await self._fresh(message)
            if any(str(r.emoji) == STAR and r.me for r in fresh.reactions):
                raise NoHistory("That result is already in the gallery.")
            if data is None:
                images = [a for a in fresh.attachments if is_result_image(a)]
                if not images:
                    raise NoHistory("The image of that result is gone, so it can't be shared.")
                data = await images[0].read()
            gallery = self.bot.get_channel(gallery_id) or await self.bot.fetch_channel(gallery_id)
            if not isinstance(gallery, discord.abc.Messageable):
                raise NoHistory(
                    "The gallery channel is not one I can post in. An admin can pick another "
                    "with `/kontext remix gallery`."
                )
            limit = gallery.guild.filesize_limit if isinstance(gallery, GUILD_CHANNELS) else 0
            data, ext = await fit_for_upload(data, max_bytes=limit or DEFAULT_UPLOAD_LIMIT)
            caption = (
                f"{STAR} **{render.quote_prompt(job.prompt, 300)}**\n"
                f"by {render.mention_user(job.user_id)} · shared by "
                f"{render.mention_user(shared_by)} · {fresh.jump_url}"
            )
            posted = await gallery.send(
                render.shorten(caption, render.MESSAGE_LIMIT),
                file=discord.File(io.BytesIO(data), filename=f"kontext-{job.id}.{ext}"),
                allowed_mentions=NO_MENTIONS,
            )
            try:
                await fresh.add_reaction(STAR)
            except discord.HTTPException as err:
                log.warning("could not mark message %d as shared: %s", fresh.id, err)
        log.info("output %d shared to the gallery as message %d", output.id, posted.id)
        return posted

    @staticmethod
    async def _fresh(message: discord.Message) -> discord.Message:
        try:
            return await message.channel.fetch_message(message.id)
        except discord.HTTPException:
            return message


class HistoryCog(commands.Cog):
    """The "Edit history" message menu and ⭐ reactions."""

    def __init__(self, bot: KontextBot) -> None:
        self.bot = bot
        self.menu = app_commands.ContextMenu(name="Edit history", callback=self.history_menu)

    async def cog_load(self) -> None:
        self.bot.tree.add_command(self.menu)

    async def cog_unload(self) -> None:
        self.bot.tree.remove_command(self.menu.name, type=self.menu.type)

    async def history_menu(
        self, interaction: discord.Interaction[Any], message: discord.Message
    ) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        ref = await self.bot.iterate.result_of(message.id)
        if ref is None or ref.output_id is None:
            raise NoHistory("That message is not one of my results, so it has no edit history.")
        await send_history(interaction, ref.output_id)

    @commands.Cog.listener()
    async def on_raw_reaction_add(self, event: discord.RawReactionActionEvent) -> None:
        me = self.bot.user
        if str(event.emoji) != STAR or event.guild_id is None or me is None:
            return
        if event.user_id == me.id:
            return
        if await self.bot.iterate.result_of(event.message_id) is None:
            return
        if await self.bot.iterate.gallery_of(event.guild_id) is None:
            return
        channel = self.bot.get_partial_messageable(event.channel_id, guild_id=event.guild_id)
        try:
            message = await channel.fetch_message(event.message_id)
            await self.bot.gallery.share(message, shared_by=event.user_id)
        except NoHistory as err:
            log.info("star on message %d not shared: %s", event.message_id, err)
        except discord.HTTPException as err:
            log.warning("star on message %d not shared: %s", event.message_id, err)
        except Exception:
            log.exception("star on message %d failed", event.message_id)
