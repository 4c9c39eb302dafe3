"""The command translator: keys from the translation context, German and Japanese only, and
the registration hash covers the localizations."""

from __future__ import annotations

import discord
from discord import app_commands

from bot.discord.command_sync import tree_digest, tree_payload
from bot.discord.translator import CatalogTranslator


def _tree() -> app_commands.CommandTree[discord.Client]:
    tree = app_commands.CommandTree(discord.Client(intents=discord.Intents.none()))
    group = app_commands.Group(name="kontext", description="Kontext settings and queue")

    @group.command(name="usage", description="How many edits and credits were used")
    @app_commands.describe(days="How many days back (default 30)")
    async def usage(interaction: discord.Interaction[discord.Client], days: int = 30) -> None:
        """Not run."""

    @app_commands.command(name="imagine", description="Make an image from a prompt")
    @app_commands.choices(
        output_format=[app_commands.Choice(name="png", value="png")],
    )
    async def imagine(
        interaction: discord.Interaction[discord.Client], output_format: str = "png"
    ) -> None:
        """Not run."""

    tree.add_command(group)
    tree.add_command(imagine)
    return tree


async def test_descriptions_come_from_the_catalog_and_names_stay_english() -> None:
    tree = _tree()
    plain = await tree_digest(tree, None)
    await tree.set_translator(CatalogTranslator())
    payload = {c["name"]: c for c in await tree_payload(tree, None)}
    kontext = payload["kontext"]
    assert kontext["description_localizations"] == {
        "de": "Kontext-Einstellungen und Warteschlange",
        "ja": "Kontext の設定とキュー",
    }
    usage = kontext["options"][0]
    assert usage["description_localizations"]["de"] == (
        "Wie viele Bearbeitungen und Credits verbraucht wurden"
    )
    assert (
        usage["options"][0]["description_localizations"]["ja"]
        == "何日前までさかのぼるか（既定 30）"
    )
    assert not kontext.get("name_localizations") and not usage.get("name_localizations")
    choice = payload["imagine"]["options"][0]["choices"][0]
    assert choice["name_localizations"] == {"de": "png", "ja": "png"}
    # The hash covers the translations: adding them registers the commands again.
    assert await tree_digest(tree, None) != plain


async def test_a_text_the_catalog_lacks_gets_no_localization() -> None:
    tree = app_commands.CommandTree(discord.Client(intents=discord.Intents.none()))

    @app_commands.command(name="unknown", description="Not in the catalog")
    async def unknown(interaction: discord.Interaction[discord.Client]) -> None:
        """Not run."""

    tree.add_command(unknown)
    await tree.set_translator(CatalogTranslator())
    (payload,) = await tree_payload(tree, None)
    assert not payload.get("description_localizations")
