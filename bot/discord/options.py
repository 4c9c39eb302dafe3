"""Choices and autocomplete shared by the commands that take the creative options."""

from __future__ import annotations

from typing import Any

import discord
from discord import app_commands

from bot.creative_models import StyleChoice
from bot.i18n import catalog
from bot.models import AspectRatio, OutputFormat
from bot.providers import CAPABILITIES

from .client import bot_of
from .language import reply_language

CHOICE_NAME_LIMIT = 100  # Discord's limit on an option choice's name
RATIO_CHOICES = [app_commands.Choice(name=r.value, value=r.value) for r in AspectRatio]
FORMAT_CHOICES = [app_commands.Choice(name=f.value, value=f.value) for f in OutputFormat]
PROVIDER_CHOICES = [
    app_commands.Choice(name=caps.label, value=name) for name, caps in CAPABILITIES.items()
]


async def style_autocomplete(
    interaction: discord.Interaction[Any], current: str
) -> list[app_commands.Choice[str]]:
    """Up to 25 styles of this server and the presets matching what is typed (the presets
    described in the member's language)."""
    if interaction.guild_id is None:
        return []
    found = await bot_of(interaction).edits.creative.search_styles(interaction.guild_id, current)
    language = await reply_language(interaction)
    return [
        app_commands.Choice(name=_choice_name(c.name, _description(c, language)), value=c.name)
        for c in found
    ]


def _description(choice: StyleChoice, language: str) -> str:
    """A built-in style's description from the catalog; a server's own style's as written."""
    if not choice.builtin:
        return choice.description
    key = f"discord.creative.preset.{choice.name.replace('-', '_')}"
    found = catalog().entries[language].get(key)
    return found if isinstance(found, str) else choice.description


def _choice_name(name: str, description: str) -> str:
    text = f"{name} — {description}" if description else name
    if len(text) <= CHOICE_NAME_LIMIT:
        return text
    return text[: CHOICE_NAME_LIMIT - 1] + "…"
