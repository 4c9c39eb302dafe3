"""The one wording of a duration, shared by the engine's refusals and the Discord edge."""

from __future__ import annotations

import math

from bot.i18n import DEFAULT_LANGUAGE, render, t


def format_duration(
    seconds: float | None, *, round_up: bool = False, language: str = DEFAULT_LANGUAGE
) -> str:
    """``12 s``, ``3 min 5 s``, ``1 h 2 min``; ``"a moment"`` for an unknown value.

    With ``round_up`` (a wait someone is told about) the value is rounded up to whole
    seconds and, past a minute, to whole minutes: "61 s" becomes "2 min", never less.
    The units are worded in ``language``.
    """
    if seconds is None:
        return render(t("duration.unknown"), language)
    whole = max(1, math.ceil(seconds) if round_up else round(seconds))
    if whole < 60:
        return render(t("duration.seconds", s=whole), language)
    minutes, secs = divmod(whole, 60)
    if round_up and secs:
        minutes, secs = minutes + 1, 0
    if minutes < 60:
        key = "duration.minutes_seconds" if secs else "duration.minutes"
        return render(t(key, m=minutes, s=secs), language)
    hours, minutes = divmod(minutes, 60)
    key = "duration.hours_minutes" if minutes else "duration.hours"
    return render(t(key, h=hours, m=minutes), language)
