"""Words in several languages: message keys, the catalog, and which language to speak.

The core never words a message for a person in one fixed language. It builds a :class:`Text`
(a catalog key and its parameters) with :func:`t`; a front end renders it in the language it
chooses (:func:`render`). The CLI speaks English; the Discord edge speaks the server's pinned
language, the member's or the server's locale (:func:`language_for`).

The catalog is data: ``bot/i18n/locales/<language>/*.toml``, one file per area, nested tables
giving dotted keys (``[errors.prompt] empty = "..."`` is the key ``errors.prompt.empty``).
Templates use ``{name}`` placeholders. A value that is a table of ``one``/``other`` forms is
chosen by the ``count`` parameter (languages without plural forms give only ``other``).

A Text can be kept as JSON (:func:`text_to_json`) and read back (:func:`stored_text`), so a
message stored by one process is worded by another in its reader's language.
"""

from bot.i18n.catalog import (
    DEFAULT_LANGUAGE,
    LANGUAGES,
    Catalog,
    Text,
    catalog,
    language_for,
    render,
    t,
)
from bot.i18n.stored import stored_text, text_from_json, text_to_json

__all__ = [
    "DEFAULT_LANGUAGE",
    "LANGUAGES",
    "Catalog",
    "Text",
    "catalog",
    "language_for",
    "render",
    "stored_text",
    "t",
    "text_from_json",
    "text_to_json",
]
