"""The message catalog: loading the TOML files, choosing plural forms, rendering a Text."""

from __future__ import annotations

import string
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, Final

#: The languages the catalog speaks, the first being the default and the fallback.
LANGUAGES: Final = ("en", "de", "ja")
DEFAULT_LANGUAGE: Final = "en"

LOCALES_DIR: Final = Path(__file__).with_name("locales")

#: A catalog entry: one template, or plural forms by category.
Entry = str | dict[str, str]

_PLURAL_FORMS: Final = frozenset({"zero", "one", "other"})


@dataclass(frozen=True, slots=True)
class Text:
    """A message to word later: a catalog key and its parameters.

    ``str(text)`` words it in the default language, so code that only logs or prints it
    (the CLI, log lines) needs to know nothing about languages. Parameters may be Texts
    themselves; they are worded in the same language as the message around them.
    """

    key: str
    params: Mapping[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        return render(self, DEFAULT_LANGUAGE)

    def __repr__(self) -> str:
        return f"Text({self.key!r}, {dict(self.params)!r})"


def t(key: str, /, **params: Any) -> Text:
    """The message ``key`` with ``params``, worded when it is rendered."""
    return Text(key, params)


def language_for(*candidates: str | None) -> str:
    """The first supported language among Discord locales or language codes, else English.

    ``"de"``, ``"en-GB"`` and ``"ja"`` are supported; ``"pt-BR"`` and ``None`` are skipped.
    """
    for candidate in candidates:
        if not candidate:
            continue
        base = str(candidate).split("-", 1)[0].split("_", 1)[0].lower()
        if base in LANGUAGES:
            return base
    return DEFAULT_LANGUAGE


def _flatten(table: Mapping[str, Any], prefix: str, out: dict[str, Entry], source: Path) -> None:
    for name, value in table.items():
        key = f"{prefix}{name}"
        if isinstance(value, str):
            out[key] = value
        elif isinstance(value, dict) and value and set(value) <= _PLURAL_FORMS:
            if "other" not in value or not all(isinstance(v, str) for v in value.values()):
                raise ValueError(f"{source}: plural forms of {key!r} need an 'other' text")
            out[key] = dict(value)
        elif isinstance(value, dict):
            _flatten(value, f"{key}.", out, source)
        else:
            raise ValueError(f"{source}: {key!r} must be a text or a table, not {value!r}")


class Catalog:
    """Every language's entries, read once from ``directory``."""

    def __init__(self, directory: Path = LOCALES_DIR) -> None:
        self.entries: dict[str, dict[str, Entry]] = {}
        for language in LANGUAGES:
            entries: dict[str, Entry] = {}
            for path in sorted((directory / language).glob("*.toml")):
                with path.open("rb") as fh:
                    table = tomllib.load(fh)
                found: dict[str, Entry] = {}
                _flatten(table, "", found, path)
                clash = set(found) & set(entries)
                if clash:
                    raise ValueError(f"{path}: keys defined twice: {sorted(clash)[:5]}")
                entries.update(found)
            self.entries[language] = entries

    def keys(self, language: str = DEFAULT_LANGUAGE) -> set[str]:
        return set(self.entries[language])

    def entry(self, key: str, language: str) -> Entry:
        """The entry for ``key`` in ``language``, falling back to the default language."""
        found = self.entries.get(language, {}).get(key)
        if found is None:
            found = self.entries[DEFAULT_LANGUAGE].get(key)
        if found is None:
            raise LookupError(f"no text {key!r} in the message catalog")
        return found

    def render(self, text: Text | str, language: str) -> str:
        """``text`` worded in ``language``; a plain string is already worded and kept as is."""
        if isinstance(text, str):
            return text
        entry = self.entry(text.key, language)
        params = {
            name: self.render(value, language) if isinstance(value, Text) else value
            for name, value in text.params.items()
        }
        if isinstance(entry, dict):
            entry = _plural(entry, params.get("count"), language)
        return entry.format_map(params)


def _plural(forms: dict[str, str], count: object, language: str) -> str:
    if isinstance(count, int) and language != "ja":
        if count == 0 and "zero" in forms:
            return forms["zero"]
        if count == 1 and "one" in forms:
            return forms["one"]
    return forms["other"]


def placeholders(entry: Entry) -> set[str]:
    """The ``{names}`` an entry's templates use (all plural forms together)."""
    templates = entry.values() if isinstance(entry, dict) else (entry,)
    return {name for template in templates for name in _names(template)}


def _names(template: str) -> Iterator[str]:
    for _, name, _, _ in string.Formatter().parse(template):
        if name:
            yield name.split(".", 1)[0].split("[", 1)[0]


@cache
def catalog() -> Catalog:
    """The catalog shipped with the package, loaded on first use."""
    return Catalog()


def render(text: Text | str, language: str = DEFAULT_LANGUAGE) -> str:
    """``text`` worded in ``language`` by the shipped catalog."""
    return catalog().render(text, language)
