"""A server's prompt blocklist: validating rules, normalising text, matching it.

Rules are words or phrases (matched as whole words) or regular expressions. Both are matched
case-insensitively against normalised text: Unicode compatibility forms folded (full-width
letters, ligatures), accents and invisible characters removed, whitespace collapsed, so
``Ｂａｄ``, ``bád`` and ``b\u200bad`` all read ``bad``.

Patterns run on the third-party ``regex`` module rather than ``re`` because it can bound a
match's time: a pattern written by a server admin must never stall the bot (catastrophic
backtracking), and ``re`` has no timeout.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable

import regex

from bot.creative_models import MAX_BLOCK_RULE_LENGTH, BlockRule
from bot.errors import KontextError
from bot.i18n import t

MATCH_TIMEOUT = 0.05  # seconds one rule may take on one prompt
_FLAGS = regex.IGNORECASE | regex.UNICODE | regex.V0


class PromptBlocked(KontextError, code="prompt_blocked"):
    """The prompt matched the server's blocklist. The message names no rule."""


class BadRule(KontextError, code="bad_block_rule"):
    """A blocklist rule that cannot be used (empty, too long, or a broken pattern)."""


def normalise(text: str) -> str:
    """Text as the blocklist sees it (see the module docstring)."""
    decomposed = unicodedata.normalize("NFKD", text)
    kept = "".join(
        ch for ch in decomposed if unicodedata.category(ch) not in ("Mn", "Me", "Cf", "Cc")
    )
    return " ".join(unicodedata.normalize("NFC", kept).casefold().split())


def _compile(rule: BlockRule) -> regex.Pattern[str]:
    if rule.regex:
        return regex.compile(rule.pattern, _FLAGS)
    words = normalise(rule.pattern).split()
    body = r"\s+".join(regex.escape(w) for w in words)
    return regex.compile(rf"(?<!\w){body}(?!\w)", _FLAGS)


def make_rule(text: str, *, is_regex: bool) -> BlockRule:
    """A validated rule, or :class:`BadRule` saying what is wrong."""
    pattern = text.strip()
    if not pattern:
        raise BadRule(t("errors.blocklist.empty"))
    if len(pattern) > MAX_BLOCK_RULE_LENGTH:
        raise BadRule(
            t("errors.blocklist.too_long", length=len(pattern), limit=MAX_BLOCK_RULE_LENGTH)
        )
    if not is_regex and not normalise(pattern):
        raise BadRule(t("errors.blocklist.invisible"))
    rule = BlockRule(pattern=pattern if is_regex else normalise(pattern), regex=is_regex)
    try:
        compiled = _compile(rule)
    except regex.error as err:
        raise BadRule(t("errors.blocklist.bad_pattern", error=str(err))) from err
    try:
        empty = compiled.search("", timeout=MATCH_TIMEOUT) is not None
    except TimeoutError:
        empty = True
    if empty:
        raise BadRule(t("errors.blocklist.matches_empty"))
    return rule


def matching_rule(prompt: str, rules: Iterable[BlockRule]) -> BlockRule | None:
    """The first rule ``prompt`` matches, if any. A rule that runs out of time counts as a
    match: a prompt is never let through because a check could not finish."""
    text = normalise(prompt)
    for rule in rules:
        try:
            if _compile(rule).search(text, timeout=MATCH_TIMEOUT) is not None:
                return rule
        except TimeoutError:
            return rule
    return None


def blocked(prompt: str, rules: Iterable[BlockRule]) -> bool:
    """Whether ``prompt`` matches any rule (see :func:`matching_rule`)."""
    return matching_rule(prompt, rules) is not None


def screen_prompt(prompt: str, rules: Iterable[BlockRule]) -> None:
    """Raise :class:`PromptBlocked` when the server's blocklist forbids ``prompt``."""
    if blocked(prompt, rules):
        raise PromptBlocked(t("errors.blocklist.blocked"))
