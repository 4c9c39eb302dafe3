"""Request-body validation against Discord's OpenAPI spec plus the docs-only limits.

The spec (``openapi.json`` from discord/discord-api-spec) is loaded once per process and
path; a ``jsonschema`` validator per (method, route template) is built lazily and cached, so a
request costs one schema walk. The spec file's location comes from ``DISCORD_OPENAPI_SPEC``,
by default ``<repo>/../shared/discord-api-spec/openapi.json``. Where it is absent,
:func:`load_spec` returns ``None`` (the pytest plugin prints a notice) unless
``KONTEXT_REQUIRE_DISCORD_SPEC=1``, which makes it an error.

Errors are returned in Discord's own shape: ``{"content": {"_errors": [{"code", "message"}]}}``
nested along the JSON path, ready to go in a 400 / 50035 "Invalid Form Body" answer.
"""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Iterable, Mapping
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError
from referencing import Registry
from referencing.jsonschema import DRAFT202012

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_SPEC_PATH = REPO_ROOT.parent / "shared" / "discord-api-spec" / "openapi.json"
SPEC_ENV = "DISCORD_OPENAPI_SPEC"
REQUIRE_ENV = "KONTEXT_REQUIRE_DISCORD_SPEC"
_SPEC_URI = "urn:discord-openapi"

ErrorTree = dict[str, Any]


class SpecMissingError(RuntimeError):
    """The spec is required (``KONTEXT_REQUIRE_DISCORD_SPEC=1``) but absent."""


def spec_path() -> Path:
    """Where the spec is expected: ``$DISCORD_OPENAPI_SPEC`` or the shared default."""
    return Path(os.environ.get(SPEC_ENV) or DEFAULT_SPEC_PATH)


def spec_required() -> bool:
    return os.environ.get(REQUIRE_ENV, "") not in ("", "0", "false", "no")


class SpecValidator:
    """Validates JSON request bodies against one loaded OpenAPI document."""

    def __init__(self, spec: Mapping[str, Any], source: Path) -> None:
        self.source = source
        self.paths: frozenset[str] = frozenset(spec["paths"])
        self._spec = spec
        resource = DRAFT202012.create_resource(spec)
        self._registry: Registry[Any] = Registry().with_resource(_SPEC_URI, resource)
        self._validators: dict[tuple[str, str], Draft202012Validator | None] = {}
        self._lock = threading.Lock()

    def _validator(self, method: str, template: str) -> Draft202012Validator | None:
        key = (method.lower(), template)
        with self._lock:
            if key in self._validators:
                return self._validators[key]
            operation = self._spec["paths"].get(template, {}).get(key[0], {})
            content = operation.get("requestBody", {}).get("content", {})
            validator = None
            if "application/json" in content:
                pointer = "/".join(
                    part.replace("~", "~0").replace("/", "~1")
                    for part in ("paths", template, key[0], "requestBody", "content")
                )
                ref = f"{_SPEC_URI}#/{pointer}/application~1json/schema"
                validator = Draft202012Validator({"$ref": ref}, registry=self._registry)
            self._validators[key] = validator
            return validator

    def knows(self, template: str) -> bool:
        return template in self.paths

    def validate(self, method: str, template: str, body: Any) -> ErrorTree:
        """Return Discord-style errors for ``body`` (empty when valid or when no schema)."""
        validator = self._validator(method, template)
        if validator is None:
            return {}
        tree: ErrorTree = {}
        for error in validator.iter_errors(coerce_snowflakes(body)):
            detail = _deepest(error)
            add_error(tree, list(detail.absolute_path), *_describe(detail))
        return tree


def _deepest(error: ValidationError) -> ValidationError:
    """Inside anyOf/oneOf, the alternative that got furthest into the body explains best."""
    while error.context:
        error = max(
            error.context,
            key=lambda e: (len(e.absolute_path), e.validator not in ("type", "anyOf", "oneOf")),
        )
    return error


_lock = threading.Lock()


@cache
def _load(path: str) -> SpecValidator:
    with Path(path).open(encoding="utf-8") as fh:
        return SpecValidator(json.load(fh), Path(path))


def load_spec(path: Path | None = None) -> SpecValidator | None:
    """The validator for the spec at ``path`` (default :func:`spec_path`), loaded once.

    Returns ``None`` when the file is absent, unless the spec is required.
    """
    target = (path or spec_path()).resolve()
    if not target.is_file():
        if spec_required():
            raise SpecMissingError(f"{REQUIRE_ENV}=1 but no Discord OpenAPI spec at {target}")
        return None
    with _lock:
        return _load(str(target))


def _is_snowflake_key(key: str) -> bool:
    return key in ("id", "users", "roles") or key.endswith(("_id", "_ids"))


def coerce_snowflakes(body: Any, key: str = "") -> Any:
    """Integers where a snowflake goes, as strings.

    Discord (and its docs: "snowflake or number") accept ``{"id": 0}`` attachment
    placeholders and ``allowed_mentions.users`` as numbers, which discord.py sends; the spec
    only allows strings.
    """
    if isinstance(body, dict):
        return {k: coerce_snowflakes(v, k) for k, v in body.items()}
    if isinstance(body, list):
        return [coerce_snowflakes(v, key) for v in body]
    if isinstance(body, int) and not isinstance(body, bool) and _is_snowflake_key(key):
        return str(body)
    return body


_KEYWORD_CODES = {
    "maxLength": ("BASE_TYPE_MAX_LENGTH", "Must be {} or fewer in length."),
    "minLength": ("BASE_TYPE_MIN_LENGTH", "Must be {} or more in length."),
    "maxItems": ("BASE_TYPE_MAX_LENGTH", "Must be {} or fewer in length."),
    "minItems": ("BASE_TYPE_MIN_LENGTH", "Must be {} or more in length."),
    "maximum": ("NUMBER_TYPE_MAX", "int value should be less than or equal to {}."),
    "minimum": ("NUMBER_TYPE_MIN", "int value should be greater than or equal to {}."),
}


def _describe(error: ValidationError) -> tuple[str, str]:
    keyword = str(error.validator)
    if keyword in _KEYWORD_CODES:
        code, template = _KEYWORD_CODES[keyword]
        return code, template.format(error.validator_value)
    if keyword == "required":
        return "BASE_TYPE_REQUIRED", f"This field is required ({error.message})"
    if keyword in ("type", "enum", "const"):
        return "BASE_TYPE_BAD_TYPE", error.message[:300]
    return f"SCHEMA_{keyword.upper()}", error.message[:300]


def add_error(tree: ErrorTree, path: Iterable[str | int], code: str, message: str) -> None:
    """Add one error at ``path`` to a Discord-style ``errors`` tree."""
    node = tree
    for part in path:
        node = node.setdefault(str(part), {})
    node.setdefault("_errors", []).append({"code": code, "message": message})


# --- the limits Discord documents but the spec does not carry -----------------------------

MAX_CONTENT = 2000
MAX_EMBED_TOTAL = 6000
MAX_EMBEDS = 10
MAX_ROWS = 5
MAX_ROW_BUTTONS = 5
MAX_FILES = 10
IS_COMPONENTS_V2 = 1 << 15
_COMMAND_NAME = re.compile(r"^[-_'\w]{1,32}$")


def check_message_limits(body: Mapping[str, Any], tree: ErrorTree) -> None:
    """Content, embeds and legacy component limits of a message create/edit body."""
    content = body.get("content")
    if isinstance(content, str) and len(content) > MAX_CONTENT:
        add_error(
            tree, ["content"], "BASE_TYPE_MAX_LENGTH", f"Must be {MAX_CONTENT} or fewer in length."
        )
    embeds = body.get("embeds")
    if isinstance(embeds, list):
        if len(embeds) > MAX_EMBEDS:
            add_error(tree, ["embeds"], "BASE_TYPE_MAX_LENGTH", "Must be 10 or fewer in length.")
        total = sum(_embed_chars(e) for e in embeds if isinstance(e, dict))
        if total > MAX_EMBED_TOTAL:
            add_error(
                tree,
                ["embeds"],
                "MESSAGE_EMBED_TOTAL_LENGTH",
                f"Embed size exceeds maximum size of {MAX_EMBED_TOTAL}",
            )
    components = body.get("components")
    flags = body.get("flags") or 0
    if isinstance(components, list) and not (isinstance(flags, int) and flags & IS_COMPONENTS_V2):
        check_legacy_components(components, tree)


def _embed_chars(embed: Mapping[str, Any]) -> int:
    total = len(str(embed.get("title") or "")) + len(str(embed.get("description") or ""))
    total += len(str((embed.get("footer") or {}).get("text") or ""))
    total += len(str((embed.get("author") or {}).get("name") or ""))
    for field in embed.get("fields") or []:
        total += len(str(field.get("name") or "")) + len(str(field.get("value") or ""))
    return total


def check_legacy_components(components: list[Any], tree: ErrorTree) -> None:
    """≤5 action rows of ≤5 buttons (or one select); custom_id 1–100 and unique."""
    if len(components) > MAX_ROWS:
        add_error(
            tree, ["components"], "BASE_TYPE_MAX_LENGTH", f"Must be {MAX_ROWS} or fewer in length."
        )
    seen: set[str] = set()
    for r, row in enumerate(components):
        if not isinstance(row, dict):
            continue
        children = row.get("components") or []
        if row.get("type") != 1:
            continue
        path: list[str | int] = ["components", r, "components"]
        if len(children) > MAX_ROW_BUTTONS:
            add_error(
                tree, path, "BASE_TYPE_MAX_LENGTH", f"Must be {MAX_ROW_BUTTONS} or fewer in length."
            )
        if len(children) > 1 and any(c.get("type") != 2 for c in children if isinstance(c, dict)):
            add_error(
                tree,
                path,
                "COMPONENT_LAYOUT_WIDTH_EXCEEDED",
                "A select menu must be alone in a row.",
            )
        for c, child in enumerate(children):
            if isinstance(child, dict):
                _check_custom_id(child, [*path, c], seen, tree)


def _check_custom_id(
    component: Mapping[str, Any], path: list[str | int], seen: set[str], tree: ErrorTree
) -> None:
    custom_id = component.get("custom_id")
    is_link = component.get("type") == 2 and component.get("style") in (5, 6)
    if custom_id is None:
        if not is_link:
            add_error(tree, [*path, "custom_id"], "BASE_TYPE_REQUIRED", "This field is required")
        return
    if not isinstance(custom_id, str) or not 1 <= len(custom_id) <= 100:
        add_error(
            tree,
            [*path, "custom_id"],
            "BASE_TYPE_BAD_LENGTH",
            "Must be between 1 and 100 in length.",
        )
    elif custom_id in seen:
        add_error(
            tree,
            [*path, "custom_id"],
            "COMPONENT_CUSTOM_ID_DUPLICATED",
            "Component custom id cannot be duplicated",
        )
    else:
        seen.add(custom_id)


def check_modal_limits(data: Mapping[str, Any], tree: ErrorTree) -> None:
    """A type-9 modal: custom_id 1–100, title ≤45, ≤5 top-level components, ids unique."""
    custom_id = data.get("custom_id")
    if not isinstance(custom_id, str) or not 1 <= len(custom_id) <= 100:
        add_error(
            tree,
            ["data", "custom_id"],
            "BASE_TYPE_BAD_LENGTH",
            "Must be between 1 and 100 in length.",
        )
    title = data.get("title")
    if not isinstance(title, str) or not 1 <= len(title) <= 45:
        add_error(
            tree, ["data", "title"], "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 45 in length."
        )
    components = data.get("components") or []
    if len(components) > MAX_ROWS:
        add_error(
            tree, ["data", "components"], "BASE_TYPE_MAX_LENGTH", "Must be 5 or fewer in length."
        )
    seen: set[str] = set()
    for i, top in enumerate(components):
        if not isinstance(top, dict):
            continue
        inner = top.get("components") or ([top["component"]] if "component" in top else [])
        for j, child in enumerate(inner):
            if isinstance(child, dict) and child.get("type") != 10:
                _check_custom_id(child, ["data", "components", i, "components", j], seen, tree)


#: The locales Discord offers (the docs' "Locales" table): the only keys a localization
#: dictionary may have.
DISCORD_LOCALES = frozenset(
    [
        "id",
        "da",
        "de",
        "en-GB",
        "en-US",
        "es-ES",
        "es-419",
        "fr",
        "hr",
        "it",
        "lt",
        "hu",
        "nl",
        "no",
        "pl",
        "pt-BR",
        "ro",
        "fi",
        "sv-SE",
        "vi",
        "tr",
        "cs",
        "el",
        "bg",
        "ru",
        "uk",
        "hi",
        "th",
        "zh-CN",
        "ja",
        "zh-TW",
        "ko",
    ]
)


def _check_localizations(item: Mapping[str, Any], path: list[str | int], tree: ErrorTree) -> None:
    """``name_localizations`` / ``description_localizations``: keyed by Discord locales."""
    for field in ("name_localizations", "description_localizations"):
        found = item.get(field)
        if not isinstance(found, dict):
            continue
        for locale in found:
            if locale not in DISCORD_LOCALES:
                add_error(
                    tree,
                    [*path, field, locale],
                    "LOCALE_INVALID",
                    f"Invalid locale: {locale!r} is not one of Discord's locales.",
                )


def check_commands(commands: Any, tree: ErrorTree) -> None:
    """Bulk overwrite: names per the docs (chat input: lowercase), descriptions 1–100,
    localizations keyed by Discord's locales (the spec checks their lengths)."""
    if not isinstance(commands, list):
        return
    for i, command in enumerate(commands):
        if not isinstance(command, dict):
            continue
        _check_command(command, [i], tree)


def _check_command(command: Mapping[str, Any], path: list[str | int], tree: ErrorTree) -> None:
    name = command.get("name")
    kind = command.get("type", 1)
    if isinstance(name, str):
        if kind == 1 and (not _COMMAND_NAME.match(name) or name != name.lower()):
            add_error(
                tree, [*path, "name"], "APPLICATION_COMMAND_INVALID_NAME", "Command name is invalid"
            )
        elif not 1 <= len(name) <= 32:
            add_error(
                tree, [*path, "name"], "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 32 in length."
            )
    description = command.get("description", "")
    if kind == 1 and not 1 <= len(description or "") <= 100:
        add_error(
            tree,
            [*path, "description"],
            "BASE_TYPE_BAD_LENGTH",
            "Must be between 1 and 100 in length.",
        )
    _check_localizations(command, path, tree)
    for j, option in enumerate(command.get("options") or []):
        if isinstance(option, dict):
            _check_command({**option, "type": 1}, [*path, "options", j], tree)
    for j, choice in enumerate(command.get("choices") or []):
        if isinstance(choice, dict):
            _check_localizations(choice, [*path, "choices", j], tree)
