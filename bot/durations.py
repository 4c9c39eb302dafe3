"""The one wording of a duration, shared by the engine's refusals and the Discord edge."""

from __future__ import annotations

import math

from bot.i18n import DEFAULT_LANGUAGE, Text, render, t


def format_duration(
    seconds: float | None, *, round_up: bool = False, language: str = DEFAULT_LANGUAGE
) -> str:
    """``12 s``, ``3 min 5 s``, ``1 h 2 min``; ``"a moment"`` for an unknown value.

    With ``round_up`` (a wait someone is told about) the value is rounded up to whole
    seconds and, past a minute, to whole minutes: "61 s" becomes "2 min", never less.
    The units are worded in ``language``.
    """
    return render(duration_text(seconds, round_up=round_up), language)


def duration_text(seconds: float | None, *, round_up: bool = False) -> Text:
    """The duration of :func:`format_duration` as a :class:`Text`, worded when the message
    around it is (so a refusal that embeds a wait speaks one language throughout)."""
    if seconds is None:
        return t("duration.unknown")
    whole = max(1, math.ceil(seconds) if round_up else round(seconds))
    if whole < 60:
        return t("duration.seconds", s=whole)
    minutes, secs = divmod(whole, 60)
    if round_up and secs:
        minutes, secs = minutes + 1, 0
    if minutes < 60:
        if secs:
            return t("duration.minutes_seconds", m=minutes, s=secs)
        return t("duration.minutes", m=minutes)
    hours, minutes = divmod(minutes, 60)
    if minutes:
        return t("duration.hours_minutes", h=hours, m=minutes)
    return t("duration.hours", h=hours)
