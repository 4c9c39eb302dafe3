"""``/edit``, ``/imagine`` and the "Edit image" message menu.

Each command acknowledges first (an ephemeral deferral, well inside Discord's 3 seconds),
then hands plain values to :class:`bot.kontext_service.KontextService`, which validates
everything before queueing; then the status message and thread are opened by
:class:`bot.discord_delivery.DiscordDelivery`. A refusal reaches the requester ephemerally
through the one error handler; nothing is queued.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.custom_ids import Action
from bot.errors import KontextError
from bot.kontext_service import BadRequest
from bot.models import MAX_PROMPT_LENGTH, AspectRatio
from cogs import errors
from cogs.buttons import PromptModal, looks_like_image
from cogs.common import image_input, requester, start_job

if TYPE_CHECKING:
    from bot.client import KontextBot

MAX_SEED = 2**32 - 1
RATIO_CHOICES = [app_commands.Choice(name=r.value, value=r.value) for r in AspectRatio]
Prompt = app_commands.Range[str, 1, MAX_PROMPT_LENGTH]
Seed = app_commands.Range[int, 1, MAX_SEED]


def _ratio(choice: app_commands.Choice[str] | None) -> AspectRatio | None:
    return AspectRatio(choice.value) if choice is not None else None


class EditCog(commands.Cog):
    def __init__(self, bot: KontextBot) -> None:
        self.bot = bot
        # Its errors reach the tree's handler (cogs.errors) like every command's.
        self.menu = app_commands.ContextMenu(name="Edit image", callback=self.edit_image_menu)

    async def cog_load(self) -> None:
        self.bot.tree.add_command(self.menu)

    async def cog_unload(self) -> None:
        self.bot.tree.remove_command(self.menu.name, type=self.menu.type)

    async def interaction_check(self, interaction: discord.Interaction[Any]) -> bool:
        if interaction.guild_id is None:
            raise app_commands.NoPrivateMessage()
        try:
            self.bot.delivery.check_channel(interaction)
        except KontextError as err:
            raise errors.Refused(err) from err
        return True

    @app_commands.command(name="edit", description="Edit up to four images with FLUX.1 Kontext")
    @app_commands.describe(
        prompt="What to change (up to 4000 characters)",
        image="The image to edit",
        image2="A second reference image",
        image3="A third reference image",
        image4="A fourth reference image",
        aspect_ratio="Shape of the result (default: like the first image)",
        seed="Fix the seed to reproduce a result",
    )
    @app_commands.choices(aspect_ratio=RATIO_CHOICES)
    async def edit(
        self,
        interaction: discord.Interaction[Any],
        prompt: Prompt,
        image: discord.Attachment,
        image2: discord.Attachment | None = None,
        image3: discord.Attachment | None = None,
        image4: discord.Attachment | None = None,
        aspect_ratio: app_commands.Choice[str] | None = None,
        seed: Seed | None = None,
    ) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        attachments = [a for a in (image, image2, image3, image4) if a is not None]
        images = [image_input(a) for a in attachments]
        await start_job(
            interaction,
            lambda: self.bot.kontext.edit(
                requester(interaction),
                prompt,
                images,
                aspect_ratio=_ratio(aspect_ratio),
                seed=seed,
            ),
        )

    @app_commands.command(name="imagine", description="Make an image from a prompt")
    @app_commands.describe(
        prompt="What to draw (up to 4000 characters)",
        aspect_ratio="Shape of the result (default 1:1)",
        seed="Fix the seed to reproduce a result",
    )
    @app_commands.choices(aspect_ratio=RATIO_CHOICES)
    async def imagine(
        self,
        interaction: discord.Interaction[Any],
        prompt: Prompt,
        aspect_ratio: app_commands.Choice[str] | None = None,
        seed: Seed | None = None,
    ) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        await start_job(
            interaction,
            lambda: self.bot.kontext.imagine(
                requester(interaction), prompt, aspect_ratio=_ratio(aspect_ratio), seed=seed
            ),
        )

    async def edit_image_menu(
        self, interaction: discord.Interaction[Any], message: discord.Message
    ) -> None:
        """Ask for a prompt; the modal's submission queues the edit of ``message``."""
        await self.interaction_check(interaction)
        has_images = any(looks_like_image(a) for a in message.attachments)
        if not has_images and await self.bot.kontext.result_job_of(message.id) is None:
            raise BadRequest(
                "That message has no image attachments. Pick a message with an image, or use "
                "`/edit` and attach one."
            )
        await interaction.response.send_modal(
            PromptModal(Action.MESSAGE_MODAL, message.id, "Edit image")
        )
