"""Every refusal of the core is worded in every language, through the real code paths."""

from __future__ import annotations

import ast
import re
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from bot.access import OtherServer, check_can_manage, check_can_request
from bot.blocklist import make_rule, screen_prompt
from bot.clock import ManualClock
from bot.creative.styles import check_style_name
from bot.creative_models import BlockRule
from bot.durations import duration_text, format_duration
from bot.edits.inputs import check_count
from bot.errors import KontextError
from bot.i18n import LANGUAGES, Text, render, t
from bot.i18n.catalog import catalog, placeholders
from bot.images import image_too_large
from bot.jobs.limits import limit_refusal
from bot.media import MediaFetcher
from bot.models import GuildSettings, Job
from bot.ops.backup import backup_sqlite
from bot.providers import CAPABILITIES
from bot.providers.base import GenerationRequest
from bot.providers.checks import check_knob, check_request, require_key
from bot.providers.http import ProviderHttp
from bot.text import check_prompt
from storage.base import DatabaseFault, FaultKind, LimitExceeded, LimitKind
from tests.conftest import REPO_ROOT

#: 23:00 UTC: the daily quota resets in one hour.
ELEVEN_PM = datetime(2026, 12, 4, 23, 0, tzinfo=UTC).timestamp()
_PLACEHOLDER = re.compile(r"\{[a-z_]+\}")


def _sample(name: str) -> object:
    return 2 if name == "count" else f"<{name}>"


def _error_keys() -> list[str]:
    return sorted(key for key in catalog().keys("en") if key.startswith("errors."))


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_refusal_text_renders_with_its_parameters(language: str) -> None:
    for key in _error_keys():
        names = placeholders(catalog().entries["en"][key])
        for count in (1, 2):
            params = {name: _sample(name) for name in names}
            if "count" in names:
                params["count"] = count
            worded = render(t(key, **params), language)
            assert worded.strip(), key
            assert not _PLACEHOLDER.search(worded.replace("{prompt}", "")), (key, worded)


def _job() -> Job:
    """A job of member 7 (only its owner matters to the rule checked)."""
    return Job.model_construct(id=42, guild_id=1, user_id=7)


def _raised(action: Callable[[], object]) -> KontextError:
    with pytest.raises(KontextError) as caught:
        action()
    return caught.value


def _http() -> ProviderHttp:
    return ProviderHttp(
        name="wavespeed",
        label="WaveSpeed",
        key_env="WAVESPEED_API_KEY",
        secret=None,
        client=httpx.AsyncClient(),
        clock=ManualClock(),
    )


CAPS = CAPABILITIES
REFUSALS: dict[str, Callable[[], KontextError]] = {
    "empty prompt": lambda: _raised(lambda: check_prompt("  \u200b ")),
    "long prompt": lambda: _raised(lambda: check_prompt("x" * 5000)),
    "other server": lambda: OtherServer(42),
    "other server in a DM": lambda: OtherServer(42, in_dm=True),
    "channel": lambda: _raised(
        lambda: check_can_request(
            GuildSettings(guild_id=1, allowed_channel_ids=(11, 12)),
            channel_id=10,
            parent_channel_id=None,
            role_ids=(),
        )
    ),
    "manage": lambda: _raised(
        lambda: check_can_manage(
            _job(), user_id=8, moderator=False, what=t("errors.access.action.delete")
        )
    ),
    "image too large": lambda: image_too_large(30 * 2**20, 20 * 2**20),
    "too many images": lambda: _raised(
        lambda: check_count(CAPS["modelslab"], replied=0, attached=3)
    ),
    "replied images fill": lambda: _raised(
        lambda: check_count(CAPS["modelslab"], replied=2, attached=1)
    ),
    "quota": lambda: limit_refusal(
        LimitExceeded(LimitKind.DAILY_QUOTA, 5, 5),
        now=ELEVEN_PM,
        user_frees_in=None,
        queue_frees_in=None,
    ),
    "queue": lambda: limit_refusal(
        LimitExceeded(LimitKind.GUILD_QUEUE, 20, 20),
        now=ELEVEN_PM,
        user_frees_in=None,
        queue_frees_in=95.0,
    ),
    "no text-to-image": lambda: _raised(
        lambda: check_request(CAPS["modelslab"], GenerationRequest(prompt="a cat"), CAPS)
    ),
    "output format": lambda: _raised(
        lambda: check_knob(CAPS["modelslab"], "safety_tolerance", 3, CAPS)
    ),
    "no key": lambda: _raised(lambda: require_key(CAPS["bfl"], "BFL_API_KEY", None)),
    "provider refused": lambda: _http().moderated("HTTP 400", "nsfw content detected"),
    "provider busy": lambda: _http().rate_limited("", 30.0, None),
    "database full": lambda: DatabaseFault(FaultKind.FULL, "kontext.db", "disk I/O error"),
    "database gone": lambda: DatabaseFault(
        FaultKind.GONE, "kontext.db", t("errors.storage.fault.moved")
    ),
    "backup": lambda: _raised(
        lambda: backup_sqlite(Path("/nonexistent/kontext.db"), Path("/nonexistent"), Path("b"))
    ),
    "download host": lambda: _raised(
        lambda: MediaFetcher(httpx.AsyncClient())._check_url("https://example.com/a.png")
    ),
    "blocked prompt": lambda: _raised(
        lambda: screen_prompt("a red car", [BlockRule(pattern="red", regex=False)])
    ),
    "bad rule": lambda: _raised(lambda: make_rule("(", is_regex=True)),
    "style name": lambda: _raised(lambda: check_style_name("none")),
}


@pytest.mark.parametrize("name", sorted(REFUSALS))
def test_each_refusal_is_worded_in_every_language(name: str) -> None:
    error = REFUSALS[name]()
    assert isinstance(error.text, Text), f"{name}: worded in English only"
    english = error.message_in("en")
    assert english == error.user_message == str(error)
    for language in LANGUAGES:
        worded = error.message_in(language)
        assert worded and not _PLACEHOLDER.search(worded), (language, worded)
        if language != "en":
            assert worded != english, f"{name} is not translated into {language}"


def test_the_empty_prompt_refusal_in_german_and_japanese() -> None:
    error = REFUSALS["empty prompt"]()
    assert error.message_in("de") == (
        "Der Prompt ist leer; schreib, was entstehen oder sich ändern soll."
    )
    assert error.message_in("ja") == (
        "プロンプトが空です。作りたいもの、または変えたい内容を書いてください。"
    )


def test_too_many_images_in_german_and_japanese() -> None:
    error = REFUSALS["too many images"]()
    assert error.user_message.startswith(
        "ModelsLab takes at most 2 images per edit and you gave 3."
    )
    assert error.message_in("de").startswith(
        "ModelsLab nimmt höchstens 2 Bilder pro Bearbeitung, und du hast 3 angegeben."
    )
    assert error.message_in("ja").startswith(
        "ModelsLab が 1 回の編集で受け付ける画像は最大 2 枚ですが、3 枚指定されました。"
    )


def test_the_quota_refusal_words_its_wait_in_the_same_language() -> None:
    error = REFUSALS["quota"]()
    assert error.user_message == (
        "You have used your 5 edits for today in this server. "
        "The quota resets at 00:00 UTC, in 1 h."
    )
    assert error.message_in("de") == (
        "Du hast deine 5 Bearbeitungen für heute auf diesem Server aufgebraucht. "
        "Das Kontingent wird in 1 Std. zurückgesetzt (um 00:00 UTC)."
    )
    assert error.message_in("ja") == (
        "このサーバーでの今日の編集 5 回をすべて使いました。"
        "上限は 00:00 UTC（あと1時間）にリセットされます。"
    )
    queue = REFUSALS["queue"]()
    assert "in about 2 min," in queue.user_message
    assert "in etwa 2 Min. frei" in queue.message_in("de")
    assert "約2分後" in queue.message_in("ja")


def test_the_channel_refusal_keeps_the_channel_mentions() -> None:
    error = REFUSALS["channel"]()
    assert error.message_in("de") == (
        "Kontext ist in diesem Kanal nicht aktiviert. Nutze es in <#11>, <#12>."
    )
    assert error.message_in("ja") == (
        "このチャンネルでは Kontext が有効になっていません。<#11>, <#12> で使ってください。"
    )


def test_a_provider_refusal_quotes_the_provider_as_it_said_it() -> None:
    error = REFUSALS["provider refused"]()
    said = 'WaveSpeed said: "nsfw content detected"'
    assert error.user_message == (
        "WaveSpeed's safety filter blocked this image. Change the prompt or the image. " + said
    )
    assert error.message_in("de") == (
        "Der Sicherheitsfilter von WaveSpeed hat dieses Bild blockiert. Ändere den Prompt oder "
        "das Bild. WaveSpeed sagt: „nsfw content detected“"
    )
    assert error.message_in("ja") == (
        "WaveSpeed の安全フィルターがこの画像をブロックしました。プロンプトか画像を変えてください。"
        "WaveSpeed からのメッセージ: 「nsfw content detected」"
    )


def test_alternatives_are_listed_in_the_language_of_the_refusal() -> None:
    error = REFUSALS["no text-to-image"]()
    assert error.user_message == (
        "ModelsLab has no text-to-image model; use AIML API, Black Forest Labs, fal.ai and "
        "Replicate."
    )
    assert "AIML API, Black Forest Labs, fal.ai und Replicate" in error.message_in("de")
    assert "AIML API、Black Forest Labs、fal.ai と Replicate" in error.message_in("ja")


@pytest.mark.parametrize("seconds", [None, 0.2, 59.0, 61.0, 3600.0, 3720.0, 7322.0])
@pytest.mark.parametrize("language", LANGUAGES)
def test_a_duration_text_words_like_format_duration(seconds: float | None, language: str) -> None:
    for round_up in (False, True):
        assert render(duration_text(seconds, round_up=round_up), language) == format_duration(
            seconds, round_up=round_up, language=language
        )


def _error_classes(trees: list[ast.Module]) -> set[str]:
    """The names of KontextError and every class that derives from it, however deep."""
    bases = {
        node.name: {b.id if isinstance(b, ast.Name) else getattr(b, "attr", "") for b in node.bases}
        for tree in trees
        for node in ast.walk(tree)
        if isinstance(node, ast.ClassDef)
    }
    found = {"KontextError"}
    while grown := {name for name, of in bases.items() if of & found} - found:
        found |= grown
    return found


def test_no_refusal_of_the_core_is_worded_in_english_only() -> None:
    """A KontextError built in the core gets a catalog Text, never an English string (a
    short lower-case literal is a machine ``reason`` code, not words)."""
    paths = [
        path
        for pkg in ("bot", "storage")
        for path in (REPO_ROOT / pkg).rglob("*.py")
        if "discord" not in path.relative_to(REPO_ROOT).parts
    ]
    trees = [ast.parse(path.read_text(encoding="utf-8")) for path in paths]
    errors = _error_classes(trees)
    worded = []
    for path, tree in zip(paths, trees, strict=True):
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)):
                continue
            if node.func.id not in errors:
                continue
            # ``detail`` is for logs, ``said`` the provider's own words: neither is ours.
            told = [k.value for k in node.keywords if k.arg not in ("detail", "said")]
            for arg in [*node.args, *told]:
                literal = isinstance(arg, ast.Constant) and isinstance(arg.value, str)
                if isinstance(arg, ast.JoinedStr) or (
                    literal and not re.fullmatch(r"[a-z_]+", str(arg.value))
                ):
                    worded.append(f"{path.relative_to(REPO_ROOT)}:{node.lineno}")
    assert not worded, worded
