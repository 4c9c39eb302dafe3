"""A remix channel's style suffix on a prompt. The prompt itself is checked by
:func:`bot.text.check_prompt`, the one prompt check of every front end; the suffix is
appended to what that check returns, and the whole must still fit the length limit."""

from __future__ import annotations

from bot.models import MAX_PROMPT_LENGTH
from bot.text import PromptRefused, check_prompt


def with_style(prompt: str, suffix: str | None) -> str:
    """``prompt`` with a remix channel's style suffix appended."""
    prompt = prompt.strip()
    suffix = (suffix or "").strip()
    if not suffix or not prompt:
        return prompt
    joiner = " " if prompt[-1] in ".,;:!?" else ", "
    return f"{prompt}{joiner}{suffix}"


def styled_prompt(prompt: str, style: str | None) -> str:
    """The checked prompt with ``style`` appended; refused when the whole is too long."""
    styled = with_style(check_prompt(prompt), style)
    if len(styled) > MAX_PROMPT_LENGTH:
        raise PromptRefused(
            "too_long",
            f"The prompt is {len(styled)} characters long with this channel's style; the "
            f"limit is {MAX_PROMPT_LENGTH}. Shorten it and try again.",
        )
    return styled
