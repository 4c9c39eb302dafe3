"""The slash commands' descriptions and choice names in German and Japanese.

:class:`CatalogTranslator` is the command tree's ``app_commands.Translator``: discord.py asks
it, for every Discord locale, to word each command and group description, option description
and choice name, and sends the answers as ``description_localizations`` /
``name_localizations`` when the commands are registered. The words come from
``commands.toml`` in the message catalog, under keys derived from what is being translated,
so the cogs' decorators stay plain English (an option's English description, too, is read
from the catalog, by :func:`described`):

* a command or group: ``commands.<qualified name>.description`` (``/kontext-admin style add``
  is ``commands.kontext_admin.style.add.description``);
* an option: ``commands.<qualified name>.options.<option name>``;
* a choice: ``commands.choices.<choice value>``;
* a message menu's name: ``commands.menus.<name>`` (``Edit image`` is
  ``commands.menus.edit_image``).

Command and option *names* are not translated: they stay English in every language, so what
the README and the help text tell members to type works everywhere. A message menu is not
typed but picked from a list, so its name is shown in the member's language. English locales get no
localization (the default text is English); a locale the catalog does not speak gets none
either, and Discord shows the English default.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Final, TypeVar

import discord
from discord import app_commands
from discord.app_commands import TranslationContextLocation as Where

from bot.i18n import DEFAULT_LANGUAGE, LANGUAGES, catalog

log = logging.getLogger(__name__)

T = TypeVar("T")

#: The Discord locales the catalog speaks, other than the default language.
LOCALES: Final = {
    locale: locale.value.split("-", 1)[0]
    for locale in discord.Locale
    if locale.value.split("-", 1)[0] in LANGUAGES
    and locale.value.split("-", 1)[0] != DEFAULT_LANGUAGE
}


def _path(qualified_name: str) -> str:
    """``kontext-admin style add`` → ``kontext_admin.style.add``."""
    return ".".join(part.replace("-", "_") for part in qualified_name.split())


def described(command: str) -> Callable[[T], T]:
    """``app_commands.describe`` with the English descriptions of the options of ``command``
    (its qualified name, ``"kontext-admin style add"``) from the catalog, where the other
    languages' words for them stand beside them."""
    prefix = f"commands.{_path(command)}.options."
    english = catalog().entries[DEFAULT_LANGUAGE]
    return app_commands.describe(
        **{
            key.removeprefix(prefix): str(text)
            for key, text in english.items()
            if key.startswith(prefix)
        }
    )


def catalog_key(context: app_commands.TranslationContextTypes) -> str | None:
    """The catalog key for what ``context`` says is being translated (None: not translated)."""
    data: Any = context.data
    where = context.location
    if where in (Where.command_description, Where.group_description):
        return f"commands.{_path(data.qualified_name)}.description"
    if where is Where.parameter_description:
        return f"commands.{_path(data.command.qualified_name)}.options.{data.name}"
    if where is Where.choice_name:
        return f"commands.choices.{data.value}"
    if where is Where.command_name and isinstance(data, app_commands.ContextMenu):
        return f"commands.menus.{data.name.lower().replace(' ', '_')}"
    return None  # names of commands, groups and options stay English


class CatalogTranslator(app_commands.Translator):
    """Words the commands from ``commands.toml`` in each locale the catalog speaks."""

    async def translate(
        self,
        string: app_commands.locale_str,
        locale: discord.Locale,
        context: app_commands.TranslationContextTypes,
    ) -> str | None:
        language = LOCALES.get(locale)
        if language is None:
            return None
        key = catalog_key(context)
        if key is None:
            return None
        found = catalog().entries[language].get(key)
        if not isinstance(found, str):
            log.debug("no %s text %s for %r", language, key, string.message)
            return None
        return found
