"""Making what members typed safe to echo on Discord, and Discord's length limits.

A prompt echoed in a message can neither ping anyone nor restyle the message around it
(:func:`escape_text`, :func:`quote_prompt`); texts are cut to Discord's limits (:func:`shorten`).
"""

from __future__ import annotations

import re

#: Discord's limit on a message's content.
MESSAGE_LIMIT = 2000
#: Discord's limit on a thread name.
THREAD_NAME_LIMIT = 100
#: How much of a prompt a status or result message echoes.
PROMPT_ECHO_LIMIT = 1500

_MARKDOWN = re.compile(r"([\\*_~`|\[\]])")
_LINE_START = re.compile(r"^([#>\-+])", re.MULTILINE)
_NUMBERED = re.compile(r"^(\d+)\.", re.MULTILINE)
_MENTION_START = re.compile(r"@|<(?=[@#&:/])")
_ZWSP = "\u200b"


def escape_text(text: str) -> str:
    """Escape markdown and defuse mentions (``@everyone``, ``<@id>``, ``<#id>``) in ``text``.

    ``allowed_mentions`` already stops pings; this also stops a prompt from *looking* like a
    mention or restyling the message around it.
    """
    escaped = _MARKDOWN.sub(r"\\\1", text)
    escaped = _NUMBERED.sub(r"\1\\.", _LINE_START.sub(r"\\\1", escaped))
    return _MENTION_START.sub(lambda m: m.group(0) + _ZWSP, escaped)


def shorten(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` characters, marking the cut with an ellipsis."""
    if len(text) <= limit:
        return text
    return text[: max(0, limit - 1)].rstrip() + "…"


def quote_prompt(prompt: str, limit: int = PROMPT_ECHO_LIMIT) -> str:
    """A prompt made safe to echo: one line per line, shortened, escaped."""
    return escape_text(shorten(" ".join(prompt.split()), limit))


def mention_user(user_id: int) -> str:
    return f"<@{user_id}>"
