"""The wording of the edit history: the numbered chain, the Undo and gallery captions."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from bot.history import ChainStep, HistoryTree
from bot.i18n import DEFAULT_LANGUAGE, Text, t
from bot.i18n import render as word
from bot.models import JobKind

from .escaping import MESSAGE_LIMIT, mention_user, quote_prompt, shorten

# --- the edit history ------------------------------------------------------------------------
#
# Prompts in the chain are shown inside inline code, so Markdown in them is inert; backticks
# (which would end the code span) become ``ˋ`` and every ``@`` gets a zero-width space after
# it, so ``@everyone``, ``<@id>`` and ``<@&id>`` can never ping, whatever the allowed mentions
# say.

PROMPT_CHARS: Final = 120
_PROMPT_LIMITS: Final = (PROMPT_CHARS, 60, 30, 12)
_KIND_LABELS: Final = {
    JobKind.REROLL: t("discord.history.kind_reroll"),
    JobKind.REPLY: t("discord.history.kind_reply"),
    JobKind.REMIX: t("discord.history.kind_remix"),
    JobKind.IMAGINE: t("discord.history.kind_imagine"),
}


def escape_prompt(prompt: str, *, limit: int = PROMPT_CHARS) -> str:
    """``prompt`` on one line, at most ``limit`` characters (before escaping), made safe to
    put inside single backticks: no backtick, and no ``@`` that could mention anyone."""
    text = " ".join(prompt.split())
    if len(text) > limit:
        text = text[: max(1, limit - 1)].rstrip() + "…"
    return text.replace("`", "ˋ").replace("@", "@\u200b")


def _line(step: ChainStep, *, is_tip: bool, limit: int, language: str) -> str:
    label: Text | None
    if step.step == 1:
        if step.kind is JobKind.IMAGINE:
            label = t("discord.history.imagined")
        elif step.parent_output_id is not None:
            label = t("discord.history.gone_parent")
        else:
            label = t("discord.history.original")
    else:
        label = _KIND_LABELS.get(step.kind)
    prompt = escape_prompt(step.prompt, limit=limit)
    body = f"`{prompt}`" if prompt else word(t("discord.history.no_prompt"), language)
    line = (
        t("discord.history.line", step=step.step, label=label, body=body)
        if label
        else t("discord.history.line_plain", step=step.step, body=body)
    )
    text = word(line, language)
    if step.branches:
        count = len(step.branches)
        more = (
            t("discord.history.branches_here", count=count)
            if is_tip
            else t("discord.history.branches_other", count=count)
        )
        text += word(more, language)
    return text


def format_chain(
    steps: Sequence[ChainStep] | HistoryTree,
    *,
    max_chars: int = 1800,
    language: str = DEFAULT_LANGUAGE,
) -> str:
    """The numbered prompts from the original image to the tip, at most ``max_chars`` long.

    Prompts are shortened first only as far as needed; when the list is still too long its
    middle is replaced by "… N more steps …", keeping the first step and as many of the last
    as fit.
    """
    if isinstance(steps, HistoryTree):
        steps = steps.steps
    if not steps:
        raise ValueError("a history needs at least one step")
    if max_chars < 40:
        raise ValueError(f"max_chars must be at least 40, not {max_chars}")
    last = len(steps) - 1
    for limit in _PROMPT_LIMITS:
        lines = [
            _line(s, is_tip=i == last, limit=limit, language=language) for i, s in enumerate(steps)
        ]
        text = "\n".join(lines)
        if len(text) <= max_chars:
            return text
        if len(lines) > 2:
            for tail in range(len(lines) - 2, 0, -1):
                hidden = len(lines) - 1 - tail
                gap = word(t("discord.history.gap", count=hidden), language)
                text = "\n".join([lines[0], gap, *lines[-tail:]])
                if len(text) <= max_chars:
                    return text
    # Only reached with a tiny max_chars and a huge chain; stay under the limit regardless.
    return text[: max_chars - 1] + "…"


def history_text(tree: HistoryTree, language: str = DEFAULT_LANGUAGE) -> str:
    """The answer above a contact sheet: how many steps, then the numbered chain."""
    chain = format_chain(tree, language=language)
    return word(t("discord.history.head", count=len(tree.steps), chain=chain), language)


def undo_caption(
    *, prompt: str, step: int, undone_by: int, language: str = DEFAULT_LANGUAGE
) -> str:
    """The text above an Undo re-post (the one who pressed Undo is named, not pinged)."""
    text = t(
        "discord.history.undo",
        step=step,
        prompt=quote_prompt(prompt, 300),
        user=mention_user(undone_by),
    )
    return shorten(word(text, language), MESSAGE_LIMIT)


def gallery_caption(
    *,
    prompt: str,
    requester_id: int,
    shared_by: int,
    link: str,
    language: str = DEFAULT_LANGUAGE,
) -> str:
    text = t(
        "discord.history.gallery",
        prompt=quote_prompt(prompt, 300),
        user=mention_user(requester_id),
        shared_by=mention_user(shared_by),
        link=link,
    )
    return shorten(word(text, language), MESSAGE_LIMIT)
