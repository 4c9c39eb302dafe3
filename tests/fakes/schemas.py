"""Request schemas taken from the providers' published pages, at test time.

The docs folder comes from ``KONTEXT_PROVIDER_DOCS`` (default ``<repo>/../shared/provider-docs``).
When it is missing, tests that need it skip with a reason, unless
``KONTEXT_REQUIRE_PROVIDER_DOCS=1`` (CI), where they fail.

How each schema is obtained:

* AIML API: the OpenAPI JSON block of the image-to-image page; its request body schema is
  used as is. The text-to-image page has no machine-readable schema, so that one is derived:
  the same properties without ``image_url``, ``model`` limited to the text-to-image id, and
  ``required: [model, prompt]`` (which is what the text-to-image page lists).
* ModelsLab: the OpenAPI YAML block; OpenAPI ``nullable: true`` is rewritten to a JSON Schema
  ``null`` type (OpenAPI 3.1 dropped the keyword, so a validator would ignore it otherwise).
* WaveSpeed: a JSON Schema built from the page's request parameter table (type, required,
  ``a ~ b`` ranges). The ``/multi`` variant is described only in prose (``images`` up to 5 and
  ``aspect_ratio``): it is the same table with ``images`` (1–5 URIs) instead of ``image`` and
  ``aspect_ratio`` from the FLUX Kontext ratio list.

All request schemas are made strict (``additionalProperties: false``) so a misspelt field is
caught, which is stricter than the pages themselves.
"""

from __future__ import annotations

import copy
import json
import os
import re
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator
from jsonschema.protocols import Validator

from bot.models import AspectRatio

REPO_ROOT = Path(__file__).resolve().parents[2]
AIML_I2I = "aimlapi-flux-kontext-max-image-to-image.md"
MODELSLAB = "modelslab-flux-kontext-img2img.md"
WAVESPEED = "wavespeed-flux-kontext-max.md"


def docs_dir() -> Path | None:
    """The provider docs folder, or ``None`` when it is not there."""
    configured = os.environ.get("KONTEXT_PROVIDER_DOCS")
    path = Path(configured) if configured else REPO_ROOT.parent / "shared" / "provider-docs"
    return path if (path / AIML_I2I).is_file() else None


def require_docs() -> Path:
    """The docs folder for a test; skip (or fail in CI) when it is missing."""
    path = docs_dir()
    if path is not None:
        return path
    reason = (
        "provider docs not found: set KONTEXT_PROVIDER_DOCS to the folder holding "
        f"{AIML_I2I} and the other provider pages"
    )
    if os.environ.get("KONTEXT_REQUIRE_PROVIDER_DOCS") == "1":
        pytest.fail(reason)
    pytest.skip(reason)


def _block(text: str, language: str) -> str:
    match = re.search(rf"```+{language}[^\n]*\n(.*?)\n```", text, re.DOTALL)
    if match is None:
        raise ValueError(f"no ```{language} block found")
    return match.group(1)


def validator(schema: dict[str, Any]) -> Validator:
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


def _strict(schema: dict[str, Any]) -> dict[str, Any]:
    schema = copy.deepcopy(schema)
    schema["additionalProperties"] = False
    return schema


@cache
def aimlapi_schemas(folder: Path) -> dict[str, Validator]:
    """Validators keyed by model id."""
    spec = json.loads(_block((folder / AIML_I2I).read_text(encoding="utf-8"), "json"))
    post = spec["paths"]["/v1/images/generations"]["post"]
    i2i = post["requestBody"]["content"]["application/json"]["schema"]
    t2i = copy.deepcopy(i2i)
    del t2i["properties"]["image_url"]
    t2i["properties"]["model"]["enum"] = ["flux/kontext-max/text-to-image"]
    t2i["required"] = ["model", "prompt"]
    t2i["title"] = "flux/kontext-max/text-to-image"
    return {
        i2i["properties"]["model"]["enum"][0]: validator(_strict(i2i)),
        "flux/kontext-max/text-to-image": validator(_strict(t2i)),
    }


def _nullable(node: Any) -> Any:
    if isinstance(node, dict):
        node = {k: _nullable(v) for k, v in node.items()}
        if node.pop("nullable", False) and "type" in node:
            kind = node["type"]
            node["type"] = [*kind, "null"] if isinstance(kind, list) else [kind, "null"]
        return node
    if isinstance(node, list):
        return [_nullable(v) for v in node]
    return node


@cache
def modelslab_spec(folder: Path) -> dict[str, Any]:
    spec: dict[str, Any] = _nullable(
        yaml.safe_load(_block((folder / MODELSLAB).read_text(encoding="utf-8"), "yaml"))
    )
    return spec


@cache
def modelslab_schemas(folder: Path) -> dict[str, Validator]:
    """``img2img`` from the page; ``fetch`` and ``upload`` from the documented prose."""
    components = modelslab_spec(folder)["components"]["schemas"]
    fetch = {
        "type": "object",
        "required": ["key"],
        "properties": {"key": {"type": "string", "minLength": 1}},
    }
    upload = {
        "type": "object",
        "required": ["key", "init_image"],
        "properties": {
            "key": {"type": "string", "minLength": 1},
            "init_image": {
                "type": "string",
                "pattern": r"^data:image/(png|jpeg|webp);base64,[A-Za-z0-9+/]+=*$",
            },
        },
    }
    return {
        "img2img": validator(_strict(components["FluxKontextImageToImageRequest"])),
        "fetch": validator(_strict(fetch)),
        "upload": validator(_strict(upload)),
    }


@cache
def modelslab_response_validator(folder: Path) -> Validator:
    """The documented 200 answer (success | processing | error), to keep the fake honest."""
    components = modelslab_spec(folder)["components"]["schemas"]
    return validator(
        {
            "oneOf": [
                components["FluxKontextImageGenerationSuccessResponse"],
                components["FluxKontextImageGenerationProcessingResponse"],
                components["FluxKontextImageGenerationErrorResponse"],
            ]
        }
    )


_TYPES = {"string": "string", "integer": "integer", "number": "number", "boolean": "boolean"}


def _table_rows(text: str, heading: str) -> list[list[str]]:
    start = text.index(heading)
    rows: list[list[str]] = []
    for line in text[start:].splitlines()[1:]:
        if "|" not in line:
            if rows:
                break
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if not cells or cells[0] in ("Parameter", "") or set(cells[0]) <= {"-"}:
            continue
        rows.append(cells)
    return rows


@cache
def wavespeed_schemas(folder: Path) -> dict[str, Validator]:
    """``single`` from the request parameter table; ``multi`` derived from it."""
    text = (folder / WAVESPEED).read_text(encoding="utf-8")
    properties: dict[str, Any] = {}
    required: list[str] = []
    for name, kind, needed, _default, bounds, *_ in _table_rows(text, "Request Parameters"):
        prop: dict[str, Any] = {"type": _TYPES[kind]}
        found = re.fullmatch(r"(-?[\d.]+)\s*~\s*(-?[\d.]+)", bounds)
        if found:
            cast = int if kind == "integer" else float
            prop["minimum"] = cast(found.group(1))
            prop["maximum"] = cast(found.group(2))
        properties[name] = prop
        if needed.lower() == "yes":
            required.append(name)
    properties["image"]["format"] = "uri"
    single = {"type": "object", "required": required, "properties": properties}
    multi = copy.deepcopy(single)
    del multi["properties"]["image"]
    multi["properties"]["images"] = {
        "type": "array",
        "minItems": 1,
        "maxItems": 5,
        "items": {"type": "string", "format": "uri"},
    }
    multi["properties"]["aspect_ratio"] = {"type": "string", "enum": [r.value for r in AspectRatio]}
    multi["required"] = [r if r != "image" else "images" for r in required]
    return {"single": validator(_strict(single)), "multi": validator(_strict(multi))}


def violations(check: Validator, body: object) -> list[str]:
    """Readable schema errors of ``body`` (empty when it is valid)."""
    return [
        f"{'/'.join(str(p) for p in e.absolute_path) or '<body>'}: {e.message}"
        for e in check.iter_errors(body)
    ]
