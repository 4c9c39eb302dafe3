"""A :class:`Text` kept as JSON, so that another process can word it later, in the language
of whoever reads it (a job's failure reason, stored with the job).

The JSON is ``{"key": "area.key", "params": {...}}``. A parameter is a string, a number, a
boolean, ``null`` or, as an object of the same shape, a Text of its own; nothing else can be
stored (:func:`text_to_json` refuses it).

The reader never fails: a stored text that is not JSON, has another shape, or names a key or
parameters this catalog cannot word (written by a newer or an older version) is not used, and
:func:`stored_text` falls back to the words kept beside it (the English rendering).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from typing import Any

from bot.i18n.catalog import LANGUAGES, Text, catalog

log = logging.getLogger(__name__)

#: Parameter values kept as they are.
Scalar = str | int | float | bool | None


def text_to_json(text: Text) -> str:
    """``text`` as JSON; :class:`TypeError` or :class:`ValueError` for a parameter that cannot
    be stored (not a string, a number, a boolean, ``None`` or a Text; a number that is not
    finite)."""
    return json.dumps(_encode(text), ensure_ascii=False, allow_nan=False, separators=(",", ":"))


def _encode(text: Text) -> dict[str, Any]:
    def refused(name: str, value: object) -> Exception:
        return TypeError(f"{text.key}: parameter {name!r} cannot be stored: {value!r}")

    return {"key": text.key, "params": _params(text.params, Text, _encode, refused)}


def _params(
    params: Mapping[str, object],
    nested: type,
    convert: Callable[[Any], object],
    refused: Callable[[str, object], Exception],
) -> dict[str, Any]:
    """``params`` with scalars kept as they are and each ``nested`` value ``convert``-ed;
    any other value raises ``refused(name, value)``."""
    converted: dict[str, Any] = {}
    for name, value in params.items():
        if isinstance(value, nested):
            converted[name] = convert(value)
        elif isinstance(value, Scalar):
            converted[name] = value
        else:
            raise refused(name, value)
    return converted


def text_from_json(raw: str | None) -> Text | None:
    """The Text kept in ``raw``, or ``None`` when there is none or it cannot be used here:
    not JSON, another shape, or a key or parameters the catalog cannot word in every
    language."""
    if not raw:
        return None
    try:
        text = _decode(json.loads(raw))
    except (ValueError, TypeError, RecursionError) as err:
        log.info("a stored text is not used (%s): %.200s", err, raw)
        return None
    for language in LANGUAGES:
        try:
            catalog().render(text, language)
        except (LookupError, ValueError, TypeError, AttributeError) as err:
            log.info("a stored text cannot be worded in %s (%r): %.200s", language, err, raw)
            return None
    return text


def _decode(data: object) -> Text:
    if not isinstance(data, Mapping) or set(data) != {"key", "params"}:
        raise ValueError("not a stored text")
    key, params = data["key"], data["params"]
    if not isinstance(key, str) or not isinstance(params, Mapping):
        raise ValueError("not a stored text")

    def refused(name: str, value: object) -> Exception:
        return ValueError(f"parameter {name!r} is not storable")

    return Text(key, _params(params, Mapping, _decode, refused))


def stored_text(raw: str | None, fallback: str | None) -> Text | str:
    """The Text kept in ``raw`` if it can be worded here, else ``fallback`` (the words kept
    beside it, or a row written before texts were kept), else an empty string."""
    text = text_from_json(raw)
    if text is not None:
        return text
    return fallback or ""
