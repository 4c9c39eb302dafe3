"""The wording of the creative commands: a member's preferences, the server's styles,
creative settings, blocklist and role tiers. Pure functions; echoed names and prompts are
escaped, roles are shown as mentions (the messages carrying them ping nobody)."""

from __future__ import annotations

from collections.abc import Mapping

from bot.creative.models import BlockRule, CreativeSettings, MemberPrefs, StyleList, Tier

from . import community_text
from .render import MESSAGE_LIMIT, escape_text, shorten

_UNSET = "—"

#: How a preference or setting is named to people.
PREF_NAMES: Mapping[str, str] = {
    "aspect_ratio": "Aspect ratio",
    "count": "Images at once",
    "style": "Style",
    "provider": "Image service",
    "guidance": "Guidance",
    "safety_tolerance": "Safety tolerance",
    "ping_when_done": community_text.ping_name(),
}


def _value(value: object) -> str:
    if value is None:
        return _UNSET
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, float):
        return f"{value:g}"
    return escape_text(str(getattr(value, "value", value)))


def prefs_text(prefs: MemberPrefs, *, changed: bool = False) -> str:
    """``/kontext prefs``: the member's own defaults in this server."""
    head = "Saved. Your preferences here:" if changed else "Your preferences here:"
    lines = [f"**{head}**"]
    for key, name in PREF_NAMES.items():
        lines.append(f"{name}: {_value(getattr(prefs, key))}")
    lines.append(
        "-# A command's own option wins over these; where you set nothing, the server's "
        "setting (or the image service's default) is used."
    )
    return "\n".join(lines)


def styles_text(styles: StyleList) -> str:
    """The server's own styles and the built-in presets."""
    lines = ["**This server's styles**"]
    if styles.server:
        lines.extend(f"`{s.name}`: {escape_text(shorten(s.prompt, 120))}" for s in styles.server)
    else:
        lines.append("None yet: `/kontext-admin style add` makes one.")
    lines.append("**Built-in styles**")
    lines.append(", ".join(f"`{s.name}`" for s in styles.presets))
    return shorten("\n".join(lines), MESSAGE_LIMIT)


def style_added_text(name: str) -> str:
    return f"Added the style `{name}`. Members can choose it in the `style` option."


def style_removed_text(name: str) -> str:
    return f"Removed the style `{escape_text(name)}`."


#: The creative settings as people read them.
SETTING_NAMES: Mapping[str, str] = {
    "default_count": "Images at once (default)",
    "max_count": "Images at once (most)",
    "default_style": "Default style",
    "default_guidance": "Default guidance",
    "max_safety_tolerance": "Loosest safety tolerance members may choose",
    "members_choose_provider": "Members may choose the image service",
    "ping_when_done": community_text.ping_name(),
}


def creative_settings_text(settings: CreativeSettings, *, changed: bool = False) -> str:
    head = "Saved. Creative settings:" if changed else "Creative settings:"
    lines = [f"**{head}**"]
    for key, name in SETTING_NAMES.items():
        value = getattr(settings, key)
        if key == "max_safety_tolerance" and value is None:
            lines.append(f"{name}: the server's safety tolerance")
        elif key == "ping_when_done":
            lines.append(f"{name}: {community_text.ping_value(value is not False)}")
        else:
            lines.append(f"{name}: {_value(value)}")
    lines.append(f"Blocked words and patterns: {len(settings.blocklist)}")
    lines.append(f"Role tiers: {len(settings.tiers)}")
    return "\n".join(lines)


def blocklist_text(rules: tuple[BlockRule, ...]) -> str:
    if not rules:
        return "Nothing is blocked. `/kontext-admin blocklist add` adds a word, phrase or pattern."
    lines = [f"**Blocked ({len(rules)})**"]
    lines.extend(f"{'pattern' if r.regex else 'words'}: {escape_text(r.pattern)}" for r in rules)
    return shorten("\n".join(lines), MESSAGE_LIMIT)


def block_added_text(rule: BlockRule) -> str:
    kind = "The pattern" if rule.regex else "The words"
    return (
        f"{kind} {escape_text(rule.pattern)} are now refused in prompts and styles "
        "(members are told their prompt is blocked, not which rule matched)."
    )


def block_removed_text(text: str, removed: bool) -> str:
    if removed:
        return f"{escape_text(text)} is no longer blocked."
    return (
        f"{escape_text(text)} was not on the blocklist; `/kontext-admin blocklist list` shows it."
    )


def _limit(value: int | None, zero: str) -> str:
    if value is None:
        return "the server's"
    return zero if value == 0 else str(value)


def tiers_text(tiers: tuple[Tier, ...]) -> str:
    if not tiers:
        return (
            "No role tiers: everyone has the server's limits. `/kontext-admin tier set` adds one."
        )
    lines = ["**Role tiers** (a member with several gets the most generous of each)"]
    lines.extend(
        f"<@&{t.role_id}>: daily quota {_limit(t.daily_quota, 'unlimited')}, "
        f"active jobs {_limit(t.max_user_active, 'unlimited')}"
        for t in tiers
    )
    return shorten("\n".join(lines), MESSAGE_LIMIT)


def tier_set_text(tier: Tier) -> str:
    return "Saved. " + tiers_text((tier,)).split("\n", 1)[1]


def tier_removed_text(role_id: int, removed: bool) -> str:
    if removed:
        return f"<@&{role_id}> has the server's limits again."
    return f"<@&{role_id}> had no tier."
