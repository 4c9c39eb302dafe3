"""The prompt blocklist: validated rules, normalised case-insensitive matching, a refusal that
names no rule."""

from __future__ import annotations

import pytest

from bot.blocklist import (
    BadRule,
    PromptBlocked,
    blocked,
    make_rule,
    normalise,
    screen_prompt,
)


def test_normalise_folds_case_width_accents_and_invisible_characters() -> None:
    assert normalise("  Ｂáｄ\u200b  WORD ") == "bad word"


def test_words_match_whole_words_in_any_disguise() -> None:
    rules = [make_rule("Bad Word", is_regex=False)]
    assert rules[0].pattern == "bad word"
    assert blocked("a BAD   word here", rules)
    assert blocked("a Ｂáｄ\u200b word", rules)
    assert not blocked("a badword", rules)
    assert not blocked("a bad sword", rules)


def test_patterns_match_case_insensitively() -> None:
    rules = [make_rule(r"b[a@]d+", is_regex=True)]
    assert blocked("so B@DD", rules)
    assert not blocked("good", rules)


@pytest.mark.parametrize(
    ("text", "is_regex", "problem"),
    [
        ("  ", False, "empty"),
        ("x" * 201, False, "200 or fewer"),
        ("\u200b", False, "no visible letters"),
        ("(unclosed", True, "not a valid pattern"),
        ("a*", True, "matches an empty prompt"),
    ],
)
def test_bad_rules_are_refused_clearly(text: str, is_regex: bool, problem: str) -> None:
    with pytest.raises(BadRule, match=problem):
        make_rule(text, is_regex=is_regex)


def test_a_pattern_that_runs_too_long_blocks_rather_than_stalls() -> None:
    rules = [make_rule(r"(a|aa)+$", is_regex=True)]
    assert blocked("a" * 30 + "b", rules)


def test_the_refusal_names_no_rule() -> None:
    rules = [make_rule("secretword", is_regex=False)]
    with pytest.raises(PromptBlocked) as refused:
        screen_prompt("draw the secretword", rules)
    assert "secretword" not in refused.value.user_message
    assert "Rephrase" in refused.value.user_message
    screen_prompt("draw a cat", rules)
