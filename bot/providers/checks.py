"""Capability checks: refuse a request before any network call, saying why and who can.

Every provider's ``check`` runs :func:`check_request` against its own
:class:`~bot.providers.base.Capabilities` and the static catalog of all registered providers,
so a refusal can name the alternatives ("ModelsLab takes at most 2 reference images; you gave
3. AIML API (up to 4) and WaveSpeed (up to 4) can take 3.").

``safety_tolerance`` is deliberately *not* refused here where unsupported: guilds always
carry a tolerance, and providers without the field run their own fixed safety checker
instead. A member who explicitly asks for one is refused by :func:`check_knob`, the one check
of the generation settings (guidance, safety tolerance, output format) with their
alternatives, which the request check uses too.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from pydantic import SecretStr

from bot.i18n import Text, t
from bot.models import MAX_REFERENCES
from bot.providers.base import Capabilities, GenerationRequest
from bot.providers.errors import AuthError, UnsupportedKnob, UnsupportedRequest


def _join(items: Sequence[Text | str]) -> Text | str:
    """``a``, ``a and b``, ``a, b and c``, worded in the message's language."""
    if not items:
        return ""
    if len(items) == 1:
        return items[0]
    head: Text | str = items[0]
    for item in items[1:-1]:
        head = t("errors.list.comma", first=head, then=item)
    return t("errors.list.and", first=head, last=items[-1])


def _others(
    caps: Capabilities,
    catalog: Mapping[str, Capabilities],
    can: Callable[[Capabilities], bool],
    describe: Callable[[Capabilities], Text | str],
) -> tuple[list[str], list[Text | str]]:
    names = [c.name for c in catalog.values() if c.name != caps.name and can(c)]
    texts = [describe(catalog[n]) for n in names]
    return names, texts


def _refuse(
    caps: Capabilities,
    problem: Text,
    names: list[str],
    texts: list[Text | str],
    tail: str,
    **n: int,
) -> UnsupportedRequest:
    """``problem``, then who can do it instead (``tail``: ``take``, ``make`` or ``do_it``)."""
    if texts:
        if tail == "take":
            others = t("errors.provider.others.take", providers=_join(texts), **n)
        elif tail == "make":
            others = t("errors.provider.others.make", providers=_join(texts), **n)
        else:
            others = t("errors.provider.others.do_it", providers=_join(texts))
    elif tail == "take":
        others = t("errors.provider.nobody.take", **n)
    elif tail == "make":
        others = t("errors.provider.nobody.make", **n)
    else:
        others = t("errors.provider.nobody.do_it")
    message = t("errors.sentences", first=problem, second=others)
    return UnsupportedRequest(caps.name, message, alternatives=names)


def max_refs(caps: Capabilities) -> int:
    """References a provider takes within the common request's own cap."""
    return min(caps.max_references, MAX_REFERENCES)


def check_request(
    caps: Capabilities, request: GenerationRequest, catalog: Mapping[str, Capabilities]
) -> None:
    """Raise :class:`UnsupportedRequest` if ``caps`` cannot serve ``request``."""
    count = len(request.references)
    if count == 0 and not caps.text_to_image:
        names, texts = _others(caps, catalog, lambda c: c.text_to_image, lambda c: c.label)
        raise UnsupportedRequest(
            caps.name,
            t("errors.provider.no_text_model_use", provider=caps.label, others=_join(texts))
            if texts
            else t("errors.provider.no_text_model", provider=caps.label),
            alternatives=names,
        )
    if 0 < count < caps.min_references:
        raise UnsupportedRequest(
            caps.name,
            t("errors.provider.min_references", provider=caps.label, count=caps.min_references),
        )
    if count > max_refs(caps):
        names, texts = _others(
            caps,
            catalog,
            lambda c: max_refs(c) >= count,
            lambda c: t("errors.provider.up_to", provider=c.label, most=max_refs(c)),
        )
        raise _refuse(
            caps,
            t(
                "errors.provider.max_references",
                provider=caps.label,
                most=max_refs(caps),
                count=count,
            ),
            names,
            texts,
            "take",
            count=count,
        )
    if request.num_images > caps.max_num_images:
        wanted = request.num_images
        names, texts = _others(
            caps,
            catalog,
            lambda c: c.max_num_images >= wanted,
            lambda c: t("errors.provider.up_to", provider=c.label, most=c.max_num_images),
        )
        raise _refuse(
            caps,
            t(
                "errors.provider.max_images",
                provider=caps.label,
                count=caps.max_num_images,
                wanted=wanted,
            ),
            names,
            texts,
            "make",
            count=wanted,
        )
    ratio = request.effective_aspect_ratio()
    if ratio not in caps.aspect_ratios:
        names, texts = _others(caps, catalog, lambda c: ratio in c.aspect_ratios, lambda c: c.label)
        raise _refuse(
            caps,
            t("errors.provider.aspect_ratio", provider=caps.label, ratio=ratio.value),
            names,
            texts,
            "do_it",
        )
    check_knob(caps, "output_format", request.output_format, catalog)
    if request.seed is not None and not caps.seed:
        raise UnsupportedRequest(caps.name, t("errors.provider.no_seed", provider=caps.label))
    if request.seed is not None and request.seed > caps.max_seed:
        raise UnsupportedRequest(
            caps.name,
            t(
                "errors.provider.seed_range",
                provider=caps.label,
                most=caps.max_seed,
                seed=request.seed,
            ),
        )
    if request.guidance is not None:
        check_knob(caps, "guidance", request.guidance, catalog)


KNOBS = ("guidance", "safety_tolerance", "output_format")
SAFETY_RANGE = (1, 6)  # the common request's scale (1 strictest)


def _knob_fits(caps: Capabilities, knob: str, value: object) -> bool:
    if knob == "guidance":
        if caps.guidance_range is None:
            return False
        low, high = caps.guidance_range
        return isinstance(value, int | float) and low <= value <= high
    if knob == "safety_tolerance":
        return caps.safety_tolerance
    if knob == "output_format":
        return value in caps.output_formats
    raise ValueError(f"unknown knob {knob!r}")


def _knob_problem(caps: Capabilities, knob: str, value: object) -> Text:
    if knob == "guidance":
        if caps.guidance_range is None:
            return t("errors.provider.no_guidance", provider=caps.label)
        low, high = caps.guidance_range
        return t(
            "errors.provider.guidance_range",
            provider=caps.label,
            low=f"{low:g}",
            high=f"{high:g}",
            value=f"{value:g}",
        )
    if knob == "safety_tolerance":
        return t("errors.provider.no_safety_tolerance", provider=caps.label)
    formats = _join(sorted(f.value for f in caps.output_formats))
    shown = getattr(value, "value", value)
    return t(
        "errors.provider.output_format",
        provider=caps.label,
        format=str(shown).upper(),
        formats=formats,
    )


def check_knob(
    caps: Capabilities, knob: str, value: object, catalog: Mapping[str, Capabilities]
) -> None:
    """Refuse a generation setting ``caps`` does not take (or not at ``value``) with
    :class:`UnsupportedKnob`, naming the registered providers that would take it. ``knob`` is
    one of :data:`KNOBS`."""
    if _knob_fits(caps, knob, value):
        return
    names = [c.name for c in catalog.values() if c.name != caps.name and _knob_fits(c, knob, value)]
    problem = _knob_problem(caps, knob, value)
    if names:
        labels = _join([catalog[n].label for n in names])
        others = t("errors.provider.others.take_it", providers=labels)
        problem = t("errors.sentences", first=problem, second=others)
    raise UnsupportedKnob(caps.name, problem, knob=knob, alternatives=names)


def require_key(caps: Capabilities, key_env: str, key: SecretStr | None) -> str:
    """The API key's value, or a clear refusal before any network call."""
    value = key.get_secret_value().strip() if key is not None else ""
    if not value:
        raise AuthError(
            caps.name,
            t("errors.provider.no_key", key_env=key_env, provider=caps.label),
        )
    return value
