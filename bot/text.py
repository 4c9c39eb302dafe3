"""Untrusted text: whether a prompt says anything, and how to show foreign text on a terminal.

Both front ends (the CLI and the Discord intake) check prompts with :func:`check_prompt`, so
"empty" means the same everywhere: nothing left once whitespace, control and format
characters (zero-width spaces and joiners, word joiners, byte-order marks, direction marks)
and the blank-looking letters below are taken away.

:func:`escape_controls` makes a file name or a provider's message safe to print: every
character Python does not call printable (ANSI escape sequences start with one, and the
right-to-left override U+202E is a format character) is shown as its ``\\x``/``\\u`` escape.
"""

from __future__ import annotations

import unicodedata
from typing import Final

from bot.errors import BadRequest
from bot.i18n import Text, t
from bot.models import MAX_PROMPT_LENGTH

#: Letters and symbols that render as nothing although Unicode does not class them as spaces
#: or format characters (Hangul fillers, the blank Braille pattern).
_BLANK_LOOKING: Final = frozenset("\u115f\u1160\u3164\uffa0\u2800")
#: Categories that draw nothing on their own: controls, format characters (U+200B..U+200F,
#: U+202A..U+202E, U+2060..U+2064, U+FEFF...), separators and surrogates.
_INVISIBLE_CATEGORIES: Final = frozenset({"Cc", "Cf", "Cs", "Zs", "Zl", "Zp"})


class PromptRefused(BadRequest, code="bad_prompt"):
    """A prompt we will not send; ``reason`` is ``"empty"`` or ``"too_long"``."""

    def __init__(self, reason: str, user_message: Text | str) -> None:
        super().__init__(user_message)
        self.reason = reason


def is_invisible(char: str) -> bool:
    """Whether ``char`` draws nothing by itself (whitespace, zero-width, controls...)."""
    return char in _BLANK_LOOKING or unicodedata.category(char) in _INVISIBLE_CATEGORIES


def check_prompt(prompt: str) -> str:
    """``prompt`` without surrounding whitespace or invisible characters, or a refusal.

    Invisible characters inside the text stay: zero-width joiners build emoji sequences.
    """
    start, end = 0, len(prompt)
    while start < end and is_invisible(prompt[start]):
        start += 1
    while end > start and is_invisible(prompt[end - 1]):
        end -= 1
    cleaned = prompt[start:end]
    if not cleaned:
        raise PromptRefused("empty", t("errors.prompt.empty"))
    if len(cleaned) > MAX_PROMPT_LENGTH:
        raise PromptRefused(
            "too_long",
            t("errors.prompt.too_long", length=len(cleaned), limit=MAX_PROMPT_LENGTH),
        )
    return cleaned


def _escape(char: str) -> str:
    code = ord(char)
    if code <= 0xFF:
        return f"\\x{code:02x}"
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def escape_controls(text: str, *, keep: str = "") -> str:
    """``text`` with every non-printable character (but those in ``keep``) escaped."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() or ch in keep else _escape(ch) for ch in text)
