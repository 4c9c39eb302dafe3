"""The one prompt check both front ends use, and escaping foreign text for a terminal."""

from __future__ import annotations

import pytest

from bot.models import MAX_PROMPT_LENGTH
from bot.text import PromptRefused, check_prompt, escape_controls


@pytest.mark.parametrize(
    "prompt",
    [
        "",
        "   ",
        "\t\n\r",
        "\u200b",
        "\u200c\u200d",
        "\u2060\ufeff",
        "\u00a0\u3000",
        "\u202e\u200f",
        "\u3164\u115f\u2800",
        "\x00\x1b",
        "\u2028\u2029",
    ],
)
def test_prompts_with_nothing_visible_are_empty(prompt: str) -> None:
    with pytest.raises(PromptRefused) as caught:
        check_prompt(prompt)
    assert caught.value.reason == "empty"
    assert str(caught.value) == "The prompt is empty; say what to make or change."


def test_visible_text_is_kept_with_its_inner_joiners() -> None:
    family = "\U0001f468\u200d\U0001f469\u200d\U0001f467"  # one emoji built with joiners
    assert check_prompt(f"\u200b  add {family} here \ufeff\n") == f"add {family} here"
    assert check_prompt("a") == "a"


def test_too_long_counts_what_is_sent() -> None:
    assert check_prompt("\u200b" + "x" * MAX_PROMPT_LENGTH + " ") == "x" * MAX_PROMPT_LENGTH
    with pytest.raises(PromptRefused) as caught:
        check_prompt("x" * (MAX_PROMPT_LENGTH + 1))
    assert caught.value.reason == "too_long" and "4001 characters" in str(caught.value)


def test_control_characters_are_shown_escaped() -> None:
    assert escape_controls("plain é 名前.png") == "plain é 名前.png"
    assert escape_controls("\x1b[31mred\x1b[0m") == "\\x1b[31mred\\x1b[0m"
    assert escape_controls("photo\u202egnp.exe") == "photo\\u202egnp.exe"
    assert escape_controls("a\nb\tc\x7f") == "a\\x0ab\\x09c\\x7f"
    assert escape_controls("line\nnext", keep="\n") == "line\nnext"
    assert escape_controls("\U000e0041") == "\\U000e0041"  # a tag character
