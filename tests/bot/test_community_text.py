"""The moderation log's wording: long prompts fit an embed, and every language has it."""

from __future__ import annotations

import pytest

from bot.creative_models import BlockedPrompt, BlockRule
from bot.discord import community_text
from bot.i18n import LANGUAGES
from bot.models import JobKind


def _refusal(prompt: str, rule: BlockRule | None = None) -> BlockedPrompt:
    return BlockedPrompt(
        guild_id=1, channel_id=2, user_id=3, kind=JobKind.EDIT, prompt=prompt, rule=rule
    )


def test_a_prompt_that_escaping_makes_too_long_is_cut_and_says_so() -> None:
    entry = community_text.blocked_entry(_refusal("*" * 4000))
    assert len(entry.prompt) <= community_text.EMBED_DESCRIPTION_LIMIT
    assert entry.shortened and entry.prompt.endswith("…")
    assert "Info button shows all of it" in entry.content


def test_a_long_plain_prompt_is_kept_whole() -> None:
    entry = community_text.blocked_entry(_refusal("word " * 790))
    assert not entry.shortened and entry.prompt == ("word " * 790).strip()


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_language_words_the_entries(language: str) -> None:
    rule = BlockRule(pattern="b`ad", regex=True)
    entry = community_text.blocked_entry(_refusal("a @everyone", rule), language)
    assert "<@3>" in entry.content and "<#2>" in entry.content and "b\\`ad" in entry.content
    assert "@everyone" not in entry.prompt
    assert "<#9>" in community_text.modlog_setting(9, language)
    assert community_text.ping_value(None, language) == "—"
