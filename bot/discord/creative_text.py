"""The wording of the creative commands: a member's preferences, the server's styles,
creative settings, blocklist and role tiers, in the language given, from the message catalog.
Pure functions; echoed names and prompts are escaped, roles are shown as mentions (the
messages carrying them ping nobody)."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from bot.creative_models import BlockRule, CreativeSettings, MemberPrefs, StyleList, Tier
from bot.i18n import DEFAULT_LANGUAGE, Text, t
from bot.i18n import render as word

from .escaping import MESSAGE_LIMIT, escape_text, shorten

#: How a preference is named to people (the keys are MemberPrefs' fields).
PREF_NAMES: Mapping[str, Text] = {
    "aspect_ratio": t("discord.creative.pref_aspect_ratio"),
    "count": t("discord.creative.pref_count"),
    "style": t("discord.creative.pref_style"),
    "provider": t("discord.creative.pref_provider"),
    "guidance": t("discord.creative.pref_guidance"),
    "safety_tolerance": t("discord.creative.pref_safety_tolerance"),
    "ping_when_done": t("community.ping.name"),
}


def _value(value: object) -> Text | str:
    if value is None:
        return t("discord.creative.unset")
    if isinstance(value, bool):
        return t("discord.creative.on") if value else t("discord.creative.off")
    if isinstance(value, float):
        return f"{value:g}"
    return escape_text(str(getattr(value, "value", value)))


def _lines(texts: list[Text | str], language: str) -> str:
    return "\n".join(word(text, language) for text in texts)


def _named_lines(
    head: Text, names: Mapping[str, Text], value_of: Callable[[str], Text | str]
) -> list[Text | str]:
    """``head``, then a ``name: value`` line for each of ``names`` (``value_of(key)``)."""
    lines: list[Text | str] = [head]
    lines.extend(
        t("discord.creative.line", name=name, value=value_of(key)) for key, name in names.items()
    )
    return lines


def prefs_text(
    prefs: MemberPrefs, *, changed: bool = False, language: str = DEFAULT_LANGUAGE
) -> str:
    """``/kontext prefs``: the member's own defaults in this server."""
    head = t("discord.creative.prefs_saved") if changed else t("discord.creative.prefs_head")
    lines = _named_lines(head, PREF_NAMES, lambda key: _value(getattr(prefs, key)))
    lines.append(t("discord.creative.prefs_hint"))
    return _lines(lines, language)


def styles_text(styles: StyleList, language: str = DEFAULT_LANGUAGE) -> str:
    """The server's own styles and the built-in presets."""
    lines: list[Text | str] = [t("discord.creative.styles_head")]
    if styles.server:
        lines.extend(f"`{s.name}`: {escape_text(shorten(s.prompt, 120))}" for s in styles.server)
    else:
        lines.append(t("discord.creative.styles_none"))
    lines.append(t("discord.creative.styles_builtin"))
    lines.append(", ".join(f"`{s.name}`" for s in styles.presets))
    return shorten(_lines(lines, language), MESSAGE_LIMIT)


def style_added_text(name: str, language: str = DEFAULT_LANGUAGE) -> str:
    return word(t("discord.creative.style_added", name=name), language)


def style_removed_text(name: str, language: str = DEFAULT_LANGUAGE) -> str:
    return word(t("discord.creative.style_removed", name=escape_text(name)), language)


#: The creative settings as people read them (the keys are CreativeSettings' fields).
SETTING_NAMES: Mapping[str, Text] = {
    "default_count": t("discord.creative.setting_default_count"),
    "max_count": t("discord.creative.setting_max_count"),
    "default_style": t("discord.creative.setting_default_style"),
    "default_guidance": t("discord.creative.setting_default_guidance"),
    "max_safety_tolerance": t("discord.creative.setting_max_safety_tolerance"),
    "members_choose_provider": t("discord.creative.setting_members_choose_provider"),
    "ping_when_done": t("community.ping.name"),
}


def _setting_value(settings: CreativeSettings, key: str) -> Text | str:
    value = getattr(settings, key)
    if key == "max_safety_tolerance" and value is None:
        return t("discord.creative.server_safety")
    if key == "ping_when_done":
        return t("community.ping.on") if value is not False else t("community.ping.off")
    return _value(value)


def creative_settings_text(
    settings: CreativeSettings, *, changed: bool = False, language: str = DEFAULT_LANGUAGE
) -> str:
    head = t("discord.creative.settings_saved") if changed else t("discord.creative.settings_head")
    lines = _named_lines(head, SETTING_NAMES, lambda key: _setting_value(settings, key))
    lines.append(t("discord.creative.blocked_count", count=len(settings.blocklist)))
    lines.append(t("discord.creative.tier_count", count=len(settings.tiers)))
    return _lines(lines, language)


def blocklist_text(rules: tuple[BlockRule, ...], language: str = DEFAULT_LANGUAGE) -> str:
    if not rules:
        return word(t("discord.creative.blocklist_none"), language)
    lines: list[Text | str] = [t("discord.creative.blocklist_head", count=len(rules))]
    lines.extend(
        t("discord.creative.block_pattern", text=escape_text(r.pattern))
        if r.regex
        else t("discord.creative.block_words", text=escape_text(r.pattern))
        for r in rules
    )
    return shorten(_lines(lines, language), MESSAGE_LIMIT)


def block_added_text(rule: BlockRule, language: str = DEFAULT_LANGUAGE) -> str:
    text = escape_text(rule.pattern)
    if rule.regex:
        return word(t("discord.creative.block_added_pattern", text=text), language)
    return word(t("discord.creative.block_added_words", text=text), language)


def block_removed_text(text: str, removed: bool, language: str = DEFAULT_LANGUAGE) -> str:
    if removed:
        return word(t("discord.creative.block_removed", text=escape_text(text)), language)
    return word(t("discord.creative.block_not_found", text=escape_text(text)), language)


def _limit(value: int | None) -> Text | str:
    if value is None:
        return t("discord.creative.servers_limit")
    return t("discord.creative.unlimited") if value == 0 else str(value)


def _tier_line(tier: Tier) -> Text:
    return t(
        "discord.creative.tier_line",
        role=tier.role_id,
        quota=_limit(tier.daily_quota),
        active=_limit(tier.max_user_active),
    )


def tiers_text(tiers: tuple[Tier, ...], language: str = DEFAULT_LANGUAGE) -> str:
    if not tiers:
        return word(t("discord.creative.tiers_none"), language)
    lines: list[Text | str] = [t("discord.creative.tiers_head")]
    lines.extend(_tier_line(tier) for tier in tiers)
    return shorten(_lines(lines, language), MESSAGE_LIMIT)


def tier_set_text(tier: Tier, language: str = DEFAULT_LANGUAGE) -> str:
    return word(t("discord.creative.saved", text=_tier_line(tier)), language)


def tier_removed_text(role_id: int, removed: bool, language: str = DEFAULT_LANGUAGE) -> str:
    if removed:
        return word(t("discord.creative.tier_removed", role=role_id), language)
    return word(t("discord.creative.tier_not_found", role=role_id), language)
