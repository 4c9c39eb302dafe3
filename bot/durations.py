"""The one wording of a duration, shared by the engine's refusals and the Discord edge."""

from __future__ import annotations

import math


def format_duration(seconds: float | None, *, round_up: bool = False) -> str:
    """``12 s``, ``3 min 5 s``, ``1 h 2 min``; ``"a moment"`` for an unknown value.

    With ``round_up`` (a wait someone is told about) the value is rounded up to whole
    seconds and, past a minute, to whole minutes: "61 s" becomes "2 min", never less.
    """
    if seconds is None:
        return "a moment"
    whole = max(1, math.ceil(seconds) if round_up else round(seconds))
    if whole < 60:
        return f"{whole} s"
    minutes, secs = divmod(whole, 60)
    if round_up and secs:
        minutes, secs = minutes + 1, 0
    if minutes < 60:
        return f"{minutes} min {secs} s" if secs else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"
