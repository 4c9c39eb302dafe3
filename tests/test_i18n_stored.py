"""Texts kept as JSON and read back: the same words in every language; a stored text that
cannot be used falls back to the words kept beside it. And the wording of every reason a job
can fail with (bot/jobs/messages.py): English as before, German and Japanese."""

from __future__ import annotations

import json
import math

import pytest

from bot.durations import duration_text
from bot.i18n import LANGUAGES, Text, render, stored_text, t, text_from_json, text_to_json
from bot.i18n.catalog import catalog, placeholders
from bot.jobs import messages
from bot.media import DownloadFailed, result_problem
from bot.providers.errors import (
    CreditsExhausted,
    InvalidInput,
    Moderated,
    RateLimited,
    UpstreamError,
)
from tests.test_i18n_errors import REFUSALS


def _round_trip(text: Text) -> Text:
    back = text_from_json(text_to_json(text))
    assert back is not None
    return back


def test_a_nested_text_comes_back_equal_and_words_alike() -> None:
    text = t(
        "errors.provider.quoted",
        message=t("jobs.failure.rate_limited", provider="Fal", wait=duration_text(61)),
        provider="Fal",
        said='busy "now" — 忙しい',
    )
    back = _round_trip(text)
    assert back == text
    for language in LANGUAGES:
        assert render(back, language) == render(text, language)
    assert render(back, "de").startswith("Fal bremst den Bot und hat ihn gebeten, 1 Min. 1 s")


@pytest.mark.parametrize("count", [1, 3])
def test_plural_forms_survive_the_round_trip(count: int) -> None:
    text = t("discord.history.branches_here", count=count)
    back = _round_trip(text)
    assert back.params["count"] == count and isinstance(back.params["count"], int)
    assert [render(back, lang) for lang in LANGUAGES] == [render(text, lang) for lang in LANGUAGES]
    assert render(back, "en").endswith(
        "1 branch from here" if count == 1 else "3 branches from here"
    )


def test_scalars_keep_their_types() -> None:
    text = t("jobs.delayed.provider_failed", code="x", ratio=0.25, flag=True, nothing=None, n=2)
    back = _round_trip(text)
    assert dict(back.params) == {"code": "x", "ratio": 0.25, "flag": True, "nothing": None, "n": 2}
    assert [type(v) for v in back.params.values()] == [str, float, bool, type(None), int]


@pytest.mark.parametrize("name", sorted(REFUSALS))
def test_every_refusal_of_the_core_can_be_stored(name: str) -> None:
    text = REFUSALS[name]().text
    assert isinstance(text, Text)
    back = _round_trip(text)
    for language in LANGUAGES:
        assert render(back, language) == render(text, language)


@pytest.mark.parametrize(
    "value", [["a", "b"], {"a": 1}, b"bytes", math.nan, math.inf, object()], ids=repr
)
def test_a_parameter_that_cannot_be_stored_is_refused(value: object) -> None:
    with pytest.raises((TypeError, ValueError)):
        text_to_json(t("jobs.failure.bad_input", provider="Fal", reason=t("x.y", bad=value)))


def test_what_the_engine_keeps_of_a_reason_that_cannot_be_stored() -> None:
    kept = messages.stored(t("jobs.failure.refused", provider="Fal", reason=["no"]))
    assert kept == {"error_message": "Fal refused this edit: ['no']", "error_text": None}
    assert messages.stored("plain words") == {"error_message": "plain words", "error_text": None}


@pytest.mark.parametrize(
    "raw",
    [
        None,
        "",
        "not json",
        "[1, 2]",
        '{"key": "jobs.failure.internal"}',
        '{"key": 3, "params": {}}',
        '{"key": "jobs.failure.internal", "params": {}, "more": 1}',
        '{"key": "jobs.failure.refused", "params": {"provider": "Fal", "reason": [1]}}',
        '{"key": "no.such.key", "params": {}}',
        '{"key": "jobs.failure.refused", "params": {"provider": "Fal"}}',
        '{"key": "jobs.failure.refused", "params": {"provider": "Fal", "reason": '
        '{"key": "gone.away", "params": {}}}}',
        "[" * 5000 + "]" * 5000,
        '{"key": "a.b", "params": {"p": ' * 5000 + "1" + "}}" * 5000,
    ],
    ids=lambda raw: repr(raw)[:40],
)
def test_a_stored_text_that_cannot_be_worded_falls_back_to_the_english_words(
    raw: str | None,
) -> None:
    assert text_from_json(raw) is None
    assert stored_text(raw, "The English words.") == "The English words."
    assert stored_text(raw, None) == ""


def test_the_json_is_readable_and_keeps_non_ascii_as_is() -> None:
    raw = text_to_json(t("jobs.failure.refused", provider="Fal", reason="画像が大きすぎます"))
    assert json.loads(raw) == {
        "key": "jobs.failure.refused",
        "params": {"provider": "Fal", "reason": "画像が大きすぎます"},
    }
    assert "画像" in raw


# --- the reasons themselves -------------------------------------------------------------------


def _job_keys() -> list[str]:
    return sorted(key for key in catalog().keys("en") if key.startswith("jobs."))


def _has_words(key: str) -> bool:
    """Whether the English entry says something beside its placeholders (a list's
    ``{first}, {rest}`` may read the same in another language)."""
    params = dict.fromkeys(placeholders(catalog().entries["en"][key]), "")
    return any(c.isalpha() for c in render(t(key, **params), "en"))


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_job_reason_renders_with_its_parameters(language: str) -> None:
    for key in _job_keys():
        params = {name: f"<{name}>" for name in placeholders(catalog().entries["en"][key])}
        worded = render(t(key, **params), language)
        assert worded.strip() and "{" not in worded, (key, worded)
        if language != "en" and _has_words(key):
            assert worded != render(t(key, **params), "en"), f"{key} is not translated"


def test_the_english_reasons_are_worded_as_before() -> None:
    said = Moderated("fal", "x", said="nsfw content detected")
    assert str(messages.provider_failure(said, "fal.ai")[1]) == (
        "fal.ai's safety filter refused this edit. Try a different image or prompt. "
        'fal.ai said: "nsfw content detected"'
    )
    assert str(messages.provider_failure(CreditsExhausted("fal", "x"), "fal.ai")[1]) == (
        "The bot's fal.ai account is out of credits, so nothing could be generated. "
        "This is not your fault: a bot admin must top up the account."
    )
    code, reason = messages.provider_failure(
        UpstreamError("fal", "x", said="overloaded"), "fal.ai", retried=False
    )
    assert code == "provider_down"
    assert str(reason) == (
        "fal.ai had a problem and did not make the image. It was not sent again, since that "
        'could charge for it twice. Please try again in a few minutes. fal.ai said: "overloaded"'
    )
    assert str(messages.rate_limited("fal.ai", 61)) == (
        "fal.ai is rate limiting the bot and asked it to wait 2 min, longer than an edit may "
        "take. Please try again later."
    )
    assert str(messages.expired(600)) == (
        "Your edit did not finish within 10 min and was stopped. The queue may be busy: please "
        "try again later."
    )
    timeout = result_problem(DownloadFailed("timeout", "slow"))
    assert str(messages.download_failed("fal.ai", timeout)) == (
        "The result could not be downloaded from fal.ai: the download took too long. Please "
        "try again."
    )
    assert str(messages.paused("fal.ai", "credits")) == (
        "fal.ai is paused because the bot's account is out of credits. The bot's operator has "
        "been told; your edit waits in the queue and runs once it works again (or expires at "
        "its deadline)."
    )
    assert str(messages.cancelled(by_moderator=True)) == "Cancelled by a moderator."


def test_the_provider_refusal_inside_a_reason_is_worded_in_the_same_language() -> None:
    refusal = InvalidInput("fal", t("errors.provider.no_seed", provider="fal.ai"))
    code, reason = messages.provider_failure(refusal, "fal.ai")
    assert code == "bad_input"
    assert render(reason, "de") == (
        "fal.ai konnte diese Anfrage nicht verwenden: fal.ai nimmt keinen Seed; lass ihn weg."
    )
    assert render(reason, "ja").startswith("fal.ai はこのリクエストを使えませんでした: ")


def test_a_wait_inside_a_reason_is_worded_in_the_reasons_language() -> None:
    reason = messages.provider_failure(RateLimited("fal", "x", retry_after=3725), "fal.ai")[1]
    assert str(reason).startswith("fal.ai is not answering properly")  # a rate limit at poll
    waited = messages.rate_limited("fal.ai", 3725)
    assert "1 h 3 min" in render(waited, "en")
    assert "1 Std. 3 Min." in render(waited, "de")
    assert "1時間3分" in render(waited, "ja")
