"""``/edit``, ``/imagine``, the "Edit image" message menu, the Edit button, and the prompt
modals they open.

Each command acknowledges first (an ephemeral deferral, well inside Discord's 3 seconds),
then hands plain values to the edit service, which validates everything before queueing;
then the status message and thread are opened by the delivery. A refusal reaches the
requester ephemerally through the one error handler; nothing is queued. Modal submissions
are handled from their custom_id alone (restart-proof), and the service checks that the job
or message a custom_id names belongs to the server the submission comes from.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.creative_models import MAX_BATCH, MAX_STYLE_NAME, RequestOptions
from bot.discord import custom_ids
from bot.discord.client import KontextBot, bot_of
from bot.discord.custom_ids import Action
from bot.discord.error_handler import Refused, report
from bot.discord.interactions import (
    MenuCog,
    image_input,
    looks_like_image,
    requester,
    start_job,
)
from bot.discord.language import reply_language
from bot.discord.options import (
    FORMAT_CHOICES,
    PROVIDER_CHOICES,
    RATIO_CHOICES,
    style_autocomplete,
)
from bot.discord.translator import described
from bot.discord.views import JobButton, PromptModal, submitted_text
from bot.edits import ImageInput
from bot.edits.base import MAX_ID
from bot.edits.creating import NO_IMAGE
from bot.errors import BadRequest, KontextError
from bot.i18n import t
from bot.models import MAX_PROMPT_LENGTH, AspectRatio, Job, OutputFormat

MAX_SEED = 2**32 - 1
Prompt = app_commands.Range[str, 1, MAX_PROMPT_LENGTH]
Seed = app_commands.Range[int, 1, MAX_SEED]
Count = app_commands.Range[int, 1, MAX_BATCH]
StyleName = app_commands.Range[str, 1, MAX_STYLE_NAME]
Guidance = app_commands.Range[float, 0, 20]
Safety = app_commands.Range[int, 1, 6]


def _options(
    count: int | None,
    style: str | None,
    aspect_ratio: app_commands.Choice[str] | None,
    guidance: float | None,
    safety_tolerance: int | None,
    output_format: app_commands.Choice[str] | None,
    provider: app_commands.Choice[str] | None,
    seed: int | None,
) -> RequestOptions:
    """What the member typed, for the creative service to resolve."""
    return RequestOptions(
        count=count,
        style=style,
        aspect_ratio=AspectRatio(aspect_ratio.value) if aspect_ratio else None,
        guidance=guidance,
        safety_tolerance=safety_tolerance,
        output_format=OutputFormat(output_format.value) if output_format else None,
        provider=provider.value if provider else None,
        seed=seed,
    )


def _modal_options(count: str, style: str) -> RequestOptions:
    """The form's optional count and style (blank: the member's or the server's default)."""
    number: int | None = None
    if count.strip():
        if not count.strip().isdigit() or not 1 <= int(count) <= MAX_BATCH:
            raise BadRequest(t("discord.modal.bad_count", most=MAX_BATCH))
        number = int(count)
    return RequestOptions(count=number, style=style.strip() or None)


class EditButton(JobButton, action=Action.EDIT):
    emoji = "✏️"
    defer = False  # it answers with the prompt modal

    async def pressed(self, interaction: discord.Interaction[Any]) -> None:
        bot = bot_of(interaction)
        await bot.edits.check_iterate(requester(interaction), self.job_id)
        title = t("discord.modal.edit_result")
        language = await reply_language(interaction)
        await interaction.response.send_modal(
            PromptModal(Action.EDIT_MODAL, self.job_id, title, language)
        )


class EditCog(MenuCog):
    def __init__(self, bot: KontextBot) -> None:
        super().__init__(bot, "Edit image", self.edit_image_menu)
        self.bot = bot

    async def interaction_check(self, interaction: discord.Interaction[Any]) -> bool:
        if interaction.guild_id is None:
            raise app_commands.NoPrivateMessage()
        try:
            self.bot.delivery.check_channel(interaction)
        except KontextError as err:
            raise Refused(err) from err
        return True

    @app_commands.command(name="edit", description="Edit up to four images with FLUX.1 Kontext")
    @described("edit")
    @app_commands.choices(
        aspect_ratio=RATIO_CHOICES, output_format=FORMAT_CHOICES, provider=PROVIDER_CHOICES
    )
    @app_commands.autocomplete(style=style_autocomplete)
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
        count: Count | None = None,
        style: StyleName | None = None,
        guidance: Guidance | None = None,
        safety_tolerance: Safety | None = None,
        output_format: app_commands.Choice[str] | None = None,
        provider: app_commands.Choice[str] | None = None,
    ) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        attachments = [a for a in (image, image2, image3, image4) if a is not None]
        images = [image_input(a) for a in attachments]
        who = requester(interaction)
        knobs = (guidance, safety_tolerance, output_format, provider, seed)
        options = _options(count, style, aspect_ratio, *knobs)
        await self._start(interaction, lambda: self.bot.edits.edit(who, prompt, images, options))

    @app_commands.command(name="imagine", description="Make an image from a prompt")
    @described("imagine")
    @app_commands.choices(
        aspect_ratio=RATIO_CHOICES, output_format=FORMAT_CHOICES, provider=PROVIDER_CHOICES
    )
    @app_commands.autocomplete(style=style_autocomplete)
    async def imagine(
        self,
        interaction: discord.Interaction[Any],
        prompt: Prompt,
        aspect_ratio: app_commands.Choice[str] | None = None,
        seed: Seed | None = None,
        count: Count | None = None,
        style: StyleName | None = None,
        guidance: Guidance | None = None,
        safety_tolerance: Safety | None = None,
        output_format: app_commands.Choice[str] | None = None,
        provider: app_commands.Choice[str] | None = None,
    ) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        who = requester(interaction)
        knobs = (guidance, safety_tolerance, output_format, provider, seed)
        options = _options(count, style, aspect_ratio, *knobs)
        await self._start(interaction, lambda: self.bot.edits.imagine(who, prompt, options))

    async def edit_image_menu(
        self, interaction: discord.Interaction[Any], message: discord.Message
    ) -> None:
        """Ask for a prompt; the modal's submission queues the edit of ``message``."""
        await self.interaction_check(interaction)
        has_images = any(looks_like_image(a) for a in message.attachments)
        if not has_images and await self.bot.edits.result_job_of(message.id) is None:
            raise BadRequest(NO_IMAGE)
        title, language = t("discord.modal.edit_image"), await reply_language(interaction)
        await interaction.response.send_modal(
            PromptModal(Action.MESSAGE_MODAL, message.id, title, language)
        )

    @commands.Cog.listener()
    async def on_interaction(self, interaction: discord.Interaction[Any]) -> None:
        """Our modals' submissions, from their custom_ids (restart-proof)."""
        if interaction.type is not discord.InteractionType.modal_submit:
            return
        data: dict[str, Any] = dict(interaction.data or {})
        parsed = custom_ids.parse(str(data.get("custom_id", "")))
        if parsed is None or parsed[0] not in custom_ids.MODAL_ACTIONS:
            return
        action, target = parsed
        try:
            await interaction.response.defer(ephemeral=True, thinking=True)
            if interaction.guild_id is None:
                raise app_commands.NoPrivateMessage()
            fields = list(data.get("components") or [])
            prompt = submitted_text(fields, "prompt")
            options = _modal_options(
                submitted_text(fields, "count"), submitted_text(fields, "style")
            )
            who = requester(interaction)
            edits = self.bot.edits
            if action is Action.EDIT_MODAL:
                await self._start(
                    interaction, lambda: edits.iterate(who, target, prompt, options=options)
                )
            else:

                async def images() -> list[ImageInput]:
                    return await self._images_of(interaction, target)

                await self._start(
                    interaction, lambda: edits.edit_message(who, prompt, target, images, options)
                )
        except Exception as error:
            await report(interaction, error)

    async def _start(
        self, interaction: discord.Interaction[Any], submit: Callable[[], Awaitable[Job]]
    ) -> None:
        await start_job(interaction, self.bot.delivery, self.bot.edits, submit)

    @staticmethod
    async def _images_of(
        interaction: discord.Interaction[Any], message_id: int
    ) -> list[ImageInput]:
        """The message's image attachments, fetched again (fresh URLs, and it may be old);
        only a message of the channel the submission comes from can be read."""
        channel = interaction.channel
        if not isinstance(channel, discord.abc.Messageable) or message_id > MAX_ID:
            return []
        message = await channel.fetch_message(message_id)
        return [image_input(a, message.id) for a in message.attachments if looks_like_image(a)]


async def setup(bot: KontextBot) -> None:
    await bot.add_cog(EditCog(bot))
    bot.add_buttons(EditButton)


async def teardown(bot: KontextBot) -> None:
    bot.remove_buttons(EditButton)
