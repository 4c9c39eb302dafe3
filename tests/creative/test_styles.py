"""Styles: presets, names, applying a style (remix suffixes included), autocomplete search."""

from __future__ import annotations

import pytest

from bot.creative.styles import (
    MAX_CHOICES,
    PRESETS,
    StyleError,
    apply_style,
    check_style_name,
    search_styles,
    suffix_style,
)
from bot.creative_models import Style

WANTED = {
    "watercolor",
    "oil-painting",
    "pixel-art",
    "anime-film",
    "line-sketch",
    "claymation",
    "golden-hour",
    "night",
    "white-background",
    "sticker",
    "sign-text",
}


def test_the_presets_exist_and_say_what_to_keep() -> None:
    assert set(PRESETS) == WANTED
    for style in PRESETS.values():
        assert style.builtin and style.description
        text = style.prompt.lower()
        assert "keep" in text or "leave everything else" in text, style.name


def test_a_remix_suffix_joins_like_the_remix_channels_always_did() -> None:
    suffix = suffix_style("watercolor")
    assert apply_style("a cat", suffix) == "a cat, watercolor"
    assert apply_style("a cat.", suffix) == "a cat. watercolor"
    assert apply_style("a cat", suffix_style("  ")) == "a cat"
    assert apply_style("a cat", None) == "a cat"


def test_a_preset_follows_the_words_as_a_sentence_or_stands_alone() -> None:
    night = PRESETS["night"]
    assert apply_style("add a dog", night) == f"add a dog. {night.prompt}"
    assert apply_style("", night) == night.prompt


def test_a_style_with_a_slot_takes_the_words_and_needs_them() -> None:
    sign = PRESETS["sign-text"]
    sent = apply_style("OPEN 24/7", sign)
    assert sent.startswith('Replace the text on the sign with "OPEN 24/7"')
    with pytest.raises(StyleError, match="needs your words"):
        apply_style("  ", sign)


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("", "needs a name"),
        ("x" * 33, "keep it to 32"),
        ("neon!", "letters, digits, hyphens"),
        ("Watercolor", "built-in style"),
        ("None", "means no style"),
    ],
)
def test_style_names_are_checked(name: str, problem: str) -> None:
    with pytest.raises(StyleError, match=problem):
        check_style_name(name)


def test_style_names_are_folded() -> None:
    assert check_style_name("  Neon  Noir ") == "neon-noir"


def test_search_ranks_prefix_then_words_then_fuzzy_server_first_at_most_25() -> None:
    server = [
        Style(name="night-market", prompt="Busy night market."),
        Style(name="noir", prompt="x"),
    ]
    names = [c.name for c in search_styles("nig", server)]
    assert names[:2] == ["night-market", "night"]  # both prefixes: the server's own first
    assert search_styles("sketch", server)[0].name == "line-sketch"  # word prefix
    assert "watercolor" in [c.name for c in search_styles("watercolour", server)]  # fuzzy
    assert [c.name for c in search_styles("ghibli", server)] == ["anime-film"]  # description
    many = [Style(name=f"s{i}", prompt="x") for i in range(40)]
    everything = search_styles("", many)
    assert len(everything) == MAX_CHOICES and everything[0].name == "s0"
    assert not everything[0].builtin
