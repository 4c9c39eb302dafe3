"""The pick buttons under a batch: pressing image N's button posts that image alone as a new
result (with the usual buttons), recorded in the history tree as the batch's chosen child.

Each is a restart-proof ``DynamicItem`` (``kx:pick<N>:<job id>``); the edit service checks that
the job belongs to the server the press comes from before the pick is recorded. The image is
posted through the delivery's one result path; picking an image picked before links to it.
"""

from __future__ import annotations

from typing import Any

import discord

from bot.discord import custom_ids, render
from bot.discord.client import KontextBot, bot_of
from bot.discord.interactions import answer, requester
from bot.discord.language import reply_language
from bot.discord.views import JobButton
from bot.jobs.events import ResultImage


class PickButton(JobButton, template=r"kx:(?!)"):
    """Posts image :attr:`number` of a batch alone."""

    number: int

    async def pressed(self, interaction: discord.Interaction[Any]) -> None:
        bot = bot_of(interaction)
        picked = await bot.edits.pick(requester(interaction), self.job_id, self.number)
        if picked.output.message_id is None:
            data = await bot.edits.kept_bytes(picked.output.content_hash)
            await bot.delivery.deliver(picked.job, [ResultImage(output=picked.output, data=data)])
        posted = await bot.edits.repo.get_output(picked.output.id)
        language = await reply_language(interaction)
        guild_id = picked.job.guild_id
        text = render.picked_text(self.number, picked.created, guild_id, posted, language)
        await answer(interaction, text)


def _pick_button(number: int) -> type[PickButton]:
    action = custom_ids.PICK_ACTIONS[number]
    return type(
        f"Pick{number}Button",
        (PickButton,),
        {"action": action, "label": str(number), "number": number, "emoji": "🖼️"},
        template=custom_ids.template(action),
    )


BUTTONS: tuple[type[PickButton], ...] = tuple(_pick_button(n) for n in custom_ids.PICK_ACTIONS)


async def setup(bot: KontextBot) -> None:
    bot.add_buttons(*BUTTONS)


async def teardown(bot: KontextBot) -> None:
    bot.remove_buttons(*BUTTONS)
