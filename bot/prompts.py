"""The one check of a prompt, for every front end: cleaned, not empty, not too long.

Invisible characters (zero-width spaces and joiners, the byte-order mark, soft hyphens) are
removed before anything else, so a prompt made only of them counts as empty; a remix
channel's style suffix is appended before the length check.
"""

from __future__ import annotations

import re

from bot.errors import BadRequest
from bot.models import MAX_PROMPT_LENGTH

#: Zero-width and other invisible format characters that carry no meaning in a prompt.
_INVISIBLE = re.compile("[\u00ad\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]")


def clean_prompt(prompt: str) -> str:
    """``prompt`` without invisible characters and surrounding whitespace."""
    return _INVISIBLE.sub("", prompt).strip()


def with_style(prompt: str, suffix: str | None) -> str:
    """``prompt`` with a remix channel's style suffix appended."""
    prompt = prompt.strip()
    suffix = (suffix or "").strip()
    if not suffix or not prompt:
        return prompt
    joiner = " " if prompt[-1] in ".,;:!?" else ", "
    return f"{prompt}{joiner}{suffix}"


def check_prompt(prompt: str, *, style: str | None = None) -> str:
    """The cleaned prompt (with ``style`` appended); raises :class:`BadRequest` when it is
    empty or longer than :data:`MAX_PROMPT_LENGTH`."""
    cleaned = clean_prompt(prompt)
    if not cleaned:
        raise BadRequest("The prompt is empty: write the change you want.")
    styled = with_style(cleaned, style)
    if len(styled) > MAX_PROMPT_LENGTH:
        detail = " (with this channel's style)" if style and style.strip() else ""
        raise BadRequest(
            f"The prompt is {len(styled)} characters long{detail}; the limit is "
            f"{MAX_PROMPT_LENGTH}. Shorten it and try again."
        )
    return styled
