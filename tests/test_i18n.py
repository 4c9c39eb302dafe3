"""The message catalog is complete in every language, and every key the code names exists."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bot.errors import BadRequest
from bot.i18n import LANGUAGES, Catalog, language_for, render, t
from bot.i18n.catalog import catalog, placeholders
from tests.conftest import REPO_ROOT

#: A catalog key named literally in code: t("area.key" ...), or a key= / *_KEY = "area.key".
_KEY_IN_CODE = re.compile(r"""\bt\(\s*["']([a-z0-9_]+(?:\.[a-z0-9_]+)+)["']""")


def _source_files() -> list[Path]:
    return [p for pkg in ("bot", "cogs", "storage") for p in (REPO_ROOT / pkg).rglob("*.py")]


@pytest.mark.parametrize("language", [lang for lang in LANGUAGES if lang != "en"])
def test_every_language_has_every_key(language: str) -> None:
    english = catalog().keys("en")
    other = catalog().keys(language)
    assert not sorted(english - other), f"{language} is missing these texts"
    assert not sorted(other - english), f"{language} has texts English does not know"


@pytest.mark.parametrize("language", [lang for lang in LANGUAGES if lang != "en"])
def test_translations_use_the_same_placeholders(language: str) -> None:
    entries = catalog().entries
    wrong = {
        key: (placeholders(entry), placeholders(entries[language][key]))
        for key, entry in entries["en"].items()
        if key in entries[language] and placeholders(entry) != placeholders(entries[language][key])
    }
    assert not wrong, f"{language}: placeholders differ (en, {language}): {wrong}"


def test_every_key_the_code_names_is_in_the_catalog() -> None:
    known = catalog().keys("en")
    missing = {
        f"{path.relative_to(REPO_ROOT)}: {key}"
        for path in _source_files()
        for key in _KEY_IN_CODE.findall(path.read_text(encoding="utf-8"))
        if key not in known
    }
    assert not missing, sorted(missing)


@pytest.fixture
def tiny(tmp_path: Path) -> Catalog:
    """A catalog of two entries in every language, for the catalog's own rules."""
    entries = {
        "en": ('name = "English"', 'images = { one = "{count} image", other = "{count} images" }'),
        "de": ('name = "Deutsch"', 'images = { one = "{count} Bild", other = "{count} Bilder" }'),
        "ja": ('name = "日本語"', 'images = { other = "{count} 枚の画像" }'),
    }
    for language, (name, images) in entries.items():
        (tmp_path / language).mkdir()
        text = f"[language]\n{name}\n\n[count]\n{images}\n"
        (tmp_path / language / "a.toml").write_text(text, encoding="utf-8")
    return Catalog(tmp_path)


def test_plural_forms_follow_the_count(tiny: Catalog) -> None:
    assert tiny.render(t("count.images", count=1), "en") == "1 image"
    assert tiny.render(t("count.images", count=3), "en") == "3 images"
    assert tiny.render(t("count.images", count=1), "de") == "1 Bild"
    assert tiny.render(t("count.images", count=2), "ja") == "2 枚の画像"


def test_texts_inside_texts_are_worded_in_the_same_language(tiny: Catalog) -> None:
    outer = t("count.images", count=t("language.name"))
    assert tiny.render(outer, "de") == "Deutsch Bilder"


@pytest.mark.parametrize(
    ("candidates", "expected"),
    [
        (("de",), "de"),
        (("en-GB",), "en"),
        (("ja",), "ja"),
        (("pt-BR", "ja"), "ja"),
        ((None, "de"), "de"),
        (("zh-CN",), "en"),
        ((), "en"),
    ],
)
def test_the_language_is_the_first_supported_locale(
    candidates: tuple[str | None, ...], expected: str
) -> None:
    assert language_for(*candidates) == expected


def test_an_error_carries_its_text_and_words_it_per_language() -> None:
    error = BadRequest(t("errors.edit.unnamed_attachment"))
    assert str(error) == error.user_message == "the attachment"
    assert error.message_in("de") == "der Anhang"
    assert BadRequest("plain words").message_in("ja") == "plain words"


def test_an_unknown_key_is_an_error_not_a_silent_blank() -> None:
    with pytest.raises(LookupError):
        render(t("no.such.key"), "de")


def test_a_broken_catalog_file_is_refused(tmp_path: Path) -> None:
    for language in LANGUAGES:
        (tmp_path / language).mkdir()
        (tmp_path / language / "a.toml").write_text('[x]\ny = { one = "1" }\n', encoding="utf-8")
    with pytest.raises(ValueError, match="'other'"):
        Catalog(tmp_path)


@pytest.mark.parametrize(
    ("language", "expected"),
    [("en", "1 h 2 min"), ("de", "1 Std. 2 Min."), ("ja", "1時間2分")],
)
def test_durations_are_worded_in_the_language(language: str, expected: str) -> None:
    from bot.durations import format_duration

    assert format_duration(3720, language=language) == expected
