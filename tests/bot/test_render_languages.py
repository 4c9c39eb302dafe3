"""Every text of the Discord edge renders in every language: no missing key, no leftover
placeholder, English exactly as before, and the other languages really translated."""

from __future__ import annotations

import re

import pytest

from bot.discord import error_handler, render
from bot.i18n import LANGUAGES
from bot.models import GuildLanguage
from tests.bot.render_samples import samples

_LEFTOVER = re.compile(r"\{[a-z_]+\}")


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_text_renders_without_leftover_placeholders(language: str) -> None:
    rendered = samples(language)
    leftovers = {name: text for name, text in rendered.items() if _LEFTOVER.search(text)}
    # A style prompt may contain {prompt} on purpose; none of the samples does.
    assert not leftovers, leftovers
    assert all(text.strip() for text in rendered.values())


@pytest.mark.parametrize("language", [lang for lang in LANGUAGES if lang != "en"])
def test_other_languages_are_translated(language: str) -> None:
    english, other = samples("en"), samples(language)
    # Texts made only of echoed values, ids and numbers read the same in every language.
    same_everywhere = {"thread_name", "picked_again", "gallery", "status_queued_waiting"}
    same = {
        name
        for name in english
        if english[name] == other[name] and name not in same_everywhere and len(english[name]) > 12
    }
    assert not same, f"{language} words these exactly like English: {sorted(same)}"


def test_english_is_unchanged() -> None:
    english = samples("en")
    assert english["status_queued"] == (
        "⏳ **Queued** — position 3, about 1 min 35 s\n> a red hat on the cat"
    )
    assert english["status_running"] == "🎨 **Editing…** 42% with fal.ai\n> a red hat on the cat"
    assert english["queue_empty"] == (
        "**This server:** 0 running, 0 waiting.\nYou have no jobs waiting or running."
    )
    assert english["history"].startswith("**Edit history** — 3 steps, the original first\n")
    assert english["picked"] == ("Posted image 2 on its own: https://discord.com/channels/1/2/3.")
    assert str(render.NOTE_BATCH).startswith("Press an image's number to post it alone;")


def test_texts_in_german_and_japanese() -> None:
    assert samples("de")["status_queued"].startswith("⏳ **In der Warteschlange** — Platz 3")
    assert samples("ja")["status_queued"].startswith("⏳ **順番待ち** — 3 番目")
    assert samples("ja")["history"].startswith("**編集履歴** — 3 ステップ")


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_error_table_words_every_expected_failure(language: str) -> None:
    import discord
    from discord import app_commands

    errors: list[BaseException] = [
        app_commands.NoPrivateMessage(),
        app_commands.MissingPermissions(["manage_guild"]),
        app_commands.BotMissingPermissions(["attach_files"]),
        app_commands.CheckFailure(),
        RuntimeError("boom"),
    ]
    for error in errors:
        text = error_handler.user_message(error, language=language)
        assert text and not _LEFTOVER.search(text)
    assert discord.Forbidden  # the table covers Discord's refusals too (tested end to end)


def test_the_language_setting_names_every_catalog_language() -> None:
    from typing import get_args

    assert set(get_args(GuildLanguage)) == {"auto", *LANGUAGES}


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_state_kind_origin_and_policy_has_a_word(language: str) -> None:
    from bot.discord.render_info import ORIGINS, origin_word
    from bot.i18n import render as word
    from bot.i18n import t
    from bot.models import IteratePolicy, JobKind, JobStatus, NsfwPolicy

    for status in JobStatus:
        assert render.state_name(status, language)
    for kind in JobKind:
        assert word(t(f"discord.info.kind_{kind.value}"), language)
    for origin in ORIGINS:
        assert origin_word(origin, language) != origin
    for policy in (*NsfwPolicy, *IteratePolicy):
        assert word(t(f"discord.settings.policy_{policy.value}"), language)


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_built_in_style_is_described_in_every_language(language: str) -> None:
    from bot.creative.styles import PRESETS
    from bot.i18n.catalog import catalog

    entries = catalog().entries[language]
    for name, style in PRESETS.items():
        found = entries.get(f"discord.creative.preset.{name.replace('-', '_')}")
        assert isinstance(found, str) and found, name
        if language == "en":
            assert found == style.description
