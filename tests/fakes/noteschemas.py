"""Request schemas for BFL, fal.ai and Replicate, built from the field tables of their notes.

The three notes (``bfl-flux-kontext.md``, ``fal-flux-kontext.md``, ``replicate-flux-kontext.md``)
give no machine-readable schema, so each field table is read row by row:

* the name is the first cell (backticks and bold removed);
* the type cell gives ``string`` / ``integer`` / ``number`` / ``boolean`` / ``string[]``, a
  ``(URI)`` format, ``| null``, or backticked literals that make an enum;
* an ``enum`` type takes its values from the backticked literals of the constraint's first
  sentence (``"1"``…``"6"`` is a range of string values);
* numeric ``a–b`` ranges in the constraint cell become ``minimum``/``maximum``;
* ``required`` in the default or constraint cell makes the field required.

Variants the notes give in prose are derived here: fal's ``/multi`` (``image_urls`` instead of
``image_url``) and ``/text-to-image`` (no image); Replicate's [max] (the same as [pro]) and its
request wrapper (``input`` plus ``webhook`` …; the generic endpoint also needs ``version``).
Like the other fakes' schemas, all are strict (``additionalProperties: false``).
"""

from __future__ import annotations

import copy
import re
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema.protocols import Validator

from tests.fakes.schemas import validator

BFL = "bfl-flux-kontext.md"
FAL = "fal-flux-kontext.md"
REPLICATE = "replicate-flux-kontext.md"

_PIPE = "\x00"
_RANGE = re.compile(r"(-?\d+(?:\.\d+)?)\s*[–-]\s*(-?\d+(?:\.\d+)?)")


def table(text: str, heading: str) -> list[dict[str, str]]:
    """The first Markdown table after the line containing ``heading``, as dicts by header."""
    lines = text[text.index(heading) :].splitlines()[1:]
    rows: list[list[str]] = []
    for line in lines:
        if not line.startswith("|"):
            if rows:
                break
            continue
        cells = [c.strip().replace(_PIPE, "|") for c in line.replace("\\|", _PIPE).split("|")[1:-1]]
        if all(set(c) <= {"-", ":", " "} for c in cells):
            continue
        rows.append(cells)
    header = [h.lower() for h in rows[0]]
    return [dict(zip(header, row, strict=False)) for row in rows[1:]]


def _ticks(text: str) -> list[str]:
    return [t.strip('"') for t in re.findall(r"`([^`]+)`", text)]


def _field(row: dict[str, str]) -> tuple[str, dict[str, Any], bool]:
    name = _ticks(row["field"])[0]
    kind = row["type"]
    constraint = row.get("constraint", row.get("constraint / notes", row.get("notes", "")))
    default = row.get("default", "")
    prop: dict[str, Any] = {}
    literals = [t for t in _ticks(kind) if t != "null"]
    lowered = kind.lower().replace("*", "")
    if literals:
        prop["enum"] = literals
    elif "enum" in lowered:
        first = constraint.split(". ")[0]
        values = _ticks(first)
        span = re.search(r'`"(\d+)"`\s*…\s*`"(\d+)"`', first)
        if span:
            values = [str(n) for n in range(int(span.group(1)), int(span.group(2)) + 1)]
        prop["enum"] = values
        if "string" in lowered:
            prop["type"] = "string"
    elif "string[]" in lowered:
        prop.update(type="array", minItems=1, items={"type": "string"})
    else:
        for word in ("integer", "number", "boolean", "string"):
            if word in lowered:
                prop["type"] = word
                break
        if "(uri)" in lowered:
            prop["format"] = "uri"
    if prop.get("type") in ("integer", "number"):
        found = _RANGE.search(constraint)
        if found:
            cast = int if prop["type"] == "integer" else float
            prop["minimum"], prop["maximum"] = cast(found.group(1)), cast(found.group(2))
    if "null" in lowered:
        if "enum" in prop:
            prop["enum"] = [*prop["enum"], None]
        if "type" in prop:
            prop["type"] = [prop["type"], "null"]
    required = "required" in f"{default} {constraint}".lower()
    return name, prop, required


def object_schema(rows: list[dict[str, str]]) -> dict[str, Any]:
    properties: dict[str, Any] = {}
    required: list[str] = []
    for row in rows:
        name, prop, needed = _field(row)
        properties[name] = prop
        if needed:
            required.append(name)
    return {
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": False,
    }


def _read(folder: Path, name: str) -> str:
    return (folder / name).read_text(encoding="utf-8")


@cache
def bfl_schemas(folder: Path) -> dict[str, Validator]:
    """``submit``: ``FluxKontextProInputs`` (the same for pro and max)."""
    body = object_schema(table(_read(folder, BFL), "### Request body: `FluxKontextProInputs`"))
    return {"submit": validator(body)}


@cache
def fal_schemas(folder: Path) -> dict[str, Validator]:
    """Keyed by the endpoint id's kind: ``edit``, ``multi``, ``text``, ``dev``."""
    text = _read(folder, FAL)
    edit = object_schema(table(text, "### Pro/Max single-image edit"))
    multi = copy.deepcopy(edit)
    del multi["properties"]["image_url"]
    multi["properties"]["image_urls"] = {
        "type": "array",
        "minItems": 1,
        "items": {"type": "string"},
    }
    multi["required"] = [f if f != "image_url" else "image_urls" for f in edit["required"]]
    t2i = copy.deepcopy(edit)
    del t2i["properties"]["image_url"]
    t2i["required"] = [f for f in edit["required"] if f != "image_url"]
    dev = object_schema(table(text, "### Dev edit"))
    return {
        "edit": validator(edit),
        "multi": validator(multi),
        "text": validator(t2i),
        "dev": validator(dev),
    }


def _wrapper(text: str, inputs: dict[str, Any], *, version: bool) -> dict[str, Any]:
    body = object_schema(table(text, "Body (`schemas_prediction_request`"))
    body["properties"]["input"] = inputs
    events = body["properties"]["webhook_events_filter"]  # "array of start, output, …"
    body["properties"]["webhook_events_filter"] = {"type": "array", "items": events}
    if version:
        body["properties"]["version"] = {"type": "string", "minLength": 1}
        body["required"] = [*body["required"], "version"]
    return body


@cache
def replicate_schemas(folder: Path) -> dict[str, Validator]:
    """Keyed by model (``owner/name``), plus ``multi`` for the generic ``/v1/predictions``."""
    text = _read(folder, REPLICATE)
    pro = object_schema(table(text, "**`black-forest-labs/flux-kontext-pro`**"))
    dev = object_schema(table(text, "**`black-forest-labs/flux-kontext-dev`**"))
    dev["required"] = sorted({*dev["required"], "input_image"})  # an editing model
    multi = object_schema(table(text, "**Multi-image (not official BFL models):**"))
    multi["properties"]["safety_tolerance"].update(type="integer", minimum=0, maximum=2)
    for model in (dev, multi):  # "same list as pro"
        model["properties"]["aspect_ratio"] = pro["properties"]["aspect_ratio"]
    return {
        "black-forest-labs/flux-kontext-pro": validator(_wrapper(text, pro, version=False)),
        "black-forest-labs/flux-kontext-max": validator(_wrapper(text, pro, version=False)),
        "black-forest-labs/flux-kontext-dev": validator(_wrapper(text, dev, version=False)),
        "multi": validator(_wrapper(text, multi, version=True)),
    }
