"""The one resolver: what a request runs with, and where each value came from.

Precedence, per value: the command's option > the member's preference > the server's setting
> the provider's (or deployment's) default. An option that breaks a server rule or that the
chosen provider does not take is refused, saying which and what would work; a stored
preference that has stopped fitting (the server lowered a maximum, changed provider, deleted
a style) is capped or dropped instead, because the member did not ask for it this time.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TypeVar

from bot.creative_models import (
    CreativeSettings,
    MemberPrefs,
    Origin,
    RequestOptions,
    Resolved,
    Style,
)
from bot.errors import KontextError
from bot.i18n import Text, t
from bot.models import MAX_PROMPT_LENGTH, GuildSettings, JobParams, OutputFormat
from bot.providers.base import Capabilities
from bot.providers.checks import check_knob
from bot.providers.errors import UnsupportedKnob

from .styles import NO_STYLE, apply_style, search_styles, style_name, suffix_style

T = TypeVar("T")

#: Whether a result pings its requester when neither the member nor the server chose.
PING_BY_DEFAULT = True


class OptionRefused(KontextError, code="option_refused"):
    """An option the server does not allow; ``option`` names it."""

    def __init__(self, user_message: Text | str, *, option: str) -> None:
        super().__init__(user_message)
        self.option = option


@dataclass(frozen=True, slots=True)
class Context:
    """What the resolver reads besides the options."""

    prefs: MemberPrefs
    guild: GuildSettings
    creative: CreativeSettings
    catalog: Mapping[str, Capabilities]  # the providers configured here
    default_provider: str
    styles: Mapping[str, Style]  # the server's own and the presets, by name
    max_active: int  # the member's active-job limit (their best role tier applied)


def _pick(option: T | None, member: T | None, server: T | None) -> tuple[T | None, Origin]:
    if option is not None:
        return option, Origin.OPTION
    if member is not None:
        return member, Origin.MEMBER
    if server is not None:
        return server, Origin.SERVER
    return None, Origin.PROVIDER


def ping_when_done(prefs: MemberPrefs, creative: CreativeSettings) -> tuple[bool, Origin]:
    """Whether a result pings its requester: the member's preference, else the server's
    setting, else on."""
    ping, origin = _pick(None, prefs.ping_when_done, creative.ping_when_done)
    return (PING_BY_DEFAULT if ping is None else ping), origin


def max_count(ctx: Context) -> int:
    """The largest batch this member may ask for: the server's batch maximum, and never more
    than their active-job limit (a batch counts once per image)."""
    return max(1, min(ctx.creative.max_count, ctx.max_active))


def _provider(options: RequestOptions, ctx: Context) -> tuple[str, Origin]:
    allowed = ctx.creative.members_choose_provider
    server = ctx.guild.provider or ctx.default_provider
    if options.provider is not None and options.provider != server and not allowed:
        raise OptionRefused(
            t("errors.creative.no_provider_choice"),
            option="provider",
        )
    name, origin = _pick(options.provider, ctx.prefs.provider if allowed else None, None)
    if name is None:
        name = server
        origin = Origin.SERVER if ctx.guild.provider else Origin.PROVIDER
    if name not in ctx.catalog:
        if origin is not Origin.OPTION:
            name, origin = server, Origin.SERVER if ctx.guild.provider else Origin.PROVIDER
        if name not in ctx.catalog:
            available = ", ".join(sorted(ctx.catalog)) or t("errors.creative.none")
            raise OptionRefused(
                t("errors.creative.provider_unavailable", name=name, available=available),
                option="provider",
            )
    return name, origin


def _count(options: RequestOptions, ctx: Context) -> tuple[int, Origin]:
    most = max_count(ctx)
    if options.count is not None and not 1 <= options.count <= most:
        raise OptionRefused(
            t("errors.creative.count", most=most, count=options.count),
            option="count",
        )
    value, origin = _pick(options.count, ctx.prefs.count, ctx.creative.default_count)
    return min(value or 1, most), origin


def _style(options: RequestOptions, ctx: Context) -> tuple[Style | None, Origin]:
    if options.style is not None and options.style.strip():
        wanted = style_name(options.style)
        if wanted in NO_STYLE:
            return None, Origin.OPTION
        found = ctx.styles.get(wanted)
        if found is None:
            close = search_styles(wanted, [s for s in ctx.styles.values() if not s.builtin])[:3]
            raise OptionRefused(
                t(
                    "errors.creative.no_style_suggest",
                    name=wanted,
                    names=", ".join(c.name for c in close),
                )
                if close
                else t("errors.creative.no_style_pick", name=wanted),
                option="style",
            )
        return found, Origin.OPTION
    for name, origin in (
        (ctx.prefs.style, Origin.MEMBER),
        (ctx.creative.default_style, Origin.SERVER),
    ):
        if name is not None and name in ctx.styles:
            return ctx.styles[name], origin
    return None, Origin.PROVIDER


def _knob(
    knob: str, caps: Capabilities, ctx: Context, value: T | None, origin: Origin
) -> tuple[T | None, Origin]:
    """Check a setting against the provider: refuse an option, drop a stored default."""
    if value is None:
        return None, Origin.PROVIDER
    try:
        check_knob(caps, knob, value, ctx.catalog)
    except UnsupportedKnob:
        if origin is Origin.OPTION:
            raise
        return None, Origin.PROVIDER
    return value, origin


def _safety(options: RequestOptions, caps: Capabilities, ctx: Context) -> tuple[int | None, Origin]:
    """A member may be stricter than the server, never looser than its ceiling; the server's
    own setting is used as the admin chose it."""
    most = ctx.creative.safety_ceiling(ctx.guild)
    if options.safety_tolerance is not None and options.safety_tolerance > most:
        raise OptionRefused(
            t("errors.creative.safety", most=most, asked=options.safety_tolerance),
            option="safety_tolerance",
        )
    value, origin = _pick(
        options.safety_tolerance, ctx.prefs.safety_tolerance, ctx.guild.safety_tolerance
    )
    if value is not None and origin is Origin.MEMBER:
        value = min(value, most)
    return _knob("safety_tolerance", caps, ctx, value, origin)


def resolve(options: RequestOptions, ctx: Context, *, remix_suffix: str | None = None) -> Resolved:
    """The values a request runs with (see the module docstring). Raises OptionRefused,
    UnsupportedKnob (an option the provider does not take) or StyleError."""
    provider, provider_from = _provider(options, ctx)
    caps = ctx.catalog[provider]
    count, count_from = _count(options, ctx)
    ratio, ratio_from = _pick(
        options.aspect_ratio, ctx.prefs.aspect_ratio, ctx.guild.default_aspect_ratio
    )
    style, style_from = _style(options, ctx)
    guidance, guidance_from = _knob(
        "guidance",
        caps,
        ctx,
        *_pick(options.guidance, ctx.prefs.guidance, ctx.creative.default_guidance),
    )
    safety, safety_from = _safety(options, caps, ctx)
    output_format, format_from = _knob(
        "output_format", caps, ctx, options.output_format, Origin.OPTION
    )
    words = options.prompt.strip()
    prompt = apply_style(words, style)
    if remix_suffix and remix_suffix.strip():
        prompt = apply_style(prompt, suffix_style(remix_suffix))
    if not prompt:
        raise OptionRefused(t("errors.creative.prompt_empty"), option="prompt")
    if len(prompt) > MAX_PROMPT_LENGTH:
        raise OptionRefused(
            t("errors.creative.prompt_too_long", length=len(prompt), limit=MAX_PROMPT_LENGTH),
            option="prompt",
        )
    ping, ping_from = ping_when_done(ctx.prefs, ctx.creative)
    origins = {
        "provider": provider_from,
        "count": count_from,
        "aspect_ratio": ratio_from,
        "style": style_from,
        "guidance": guidance_from,
        "safety_tolerance": safety_from,
        "output_format": format_from,
        "ping_when_done": ping_from,
    }
    params = JobParams(
        aspect_ratio=ratio,
        seed=options.seed,
        guidance=guidance,
        safety_tolerance=safety,
        output_format=output_format or OutputFormat.PNG,
        num_images=count,
        style=style.name if style is not None else None,
        request_prompt=words if words != prompt else None,
        ping=ping,
        origins={k: v.value for k, v in origins.items()},
    )
    return Resolved(
        prompt=prompt,
        request_prompt=words,
        style=params.style,
        provider=provider,
        params=params,
        origins=origins,
        ping_when_done=ping,
    )
