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

from collections.abc import Callable, Mapping

from pydantic import SecretStr

from bot.models import MAX_REFERENCES
from bot.providers.base import Capabilities, GenerationRequest
from bot.providers.errors import AuthError, UnsupportedKnob, UnsupportedRequest


def _join(items: list[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def _others(
    caps: Capabilities,
    catalog: Mapping[str, Capabilities],
    can: Callable[[Capabilities], bool],
    describe: Callable[[Capabilities], str],
) -> tuple[list[str], list[str]]:
    names = [c.name for c in catalog.values() if c.name != caps.name and can(c)]
    texts = [describe(catalog[n]) for n in names]
    return names, texts


def _refuse(
    caps: Capabilities, problem: str, names: list[str], texts: list[str], tail: str
) -> UnsupportedRequest:
    if texts:
        message = f"{problem} {_join(texts)} can {tail}."
    else:
        message = f"{problem} No configured provider can {tail}; change the request."
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
        where = f"use {_join(texts)}." if texts else "attach an image to edit."
        raise UnsupportedRequest(
            caps.name,
            f"{caps.label} has no text-to-image model; {where}",
            alternatives=names,
        )
    if 0 < count < caps.min_references:
        raise UnsupportedRequest(
            caps.name, f"{caps.label} needs at least {caps.min_references} reference images."
        )
    if count > max_refs(caps):
        names, texts = _others(
            caps,
            catalog,
            lambda c: max_refs(c) >= count,
            lambda c: f"{c.label} (up to {max_refs(c)})",
        )
        raise _refuse(
            caps,
            f"{caps.label} takes at most {max_refs(caps)} reference images; you gave {count}.",
            names,
            texts,
            f"take {count}",
        )
    if request.num_images > caps.max_num_images:
        wanted = request.num_images
        names, texts = _others(
            caps,
            catalog,
            lambda c: c.max_num_images >= wanted,
            lambda c: f"{c.label} (up to {c.max_num_images})",
        )
        one = "one image" if caps.max_num_images == 1 else f"{caps.max_num_images} images"
        raise _refuse(
            caps,
            f"{caps.label} makes {one} per request; you asked for {wanted}.",
            names,
            texts,
            f"make {wanted}",
        )
    ratio = request.effective_aspect_ratio()
    if ratio not in caps.aspect_ratios:
        names, texts = _others(caps, catalog, lambda c: ratio in c.aspect_ratios, lambda c: c.label)
        raise _refuse(
            caps, f"{caps.label} cannot make {ratio.value} images.", names, texts, "do it"
        )
    check_knob(caps, "output_format", request.output_format, catalog)
    if request.seed is not None and not caps.seed:
        raise UnsupportedRequest(caps.name, f"{caps.label} does not take a seed; leave it out.")
    if request.seed is not None and request.seed > caps.max_seed:
        raise UnsupportedRequest(
            caps.name,
            f"{caps.label} takes seeds from 1 to {caps.max_seed}; you gave {request.seed}.",
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


def _knob_problem(caps: Capabilities, knob: str, value: object) -> str:
    if knob == "guidance":
        if caps.guidance_range is None:
            return f"{caps.label} does not take a guidance value; leave it out."
        low, high = caps.guidance_range
        return f"{caps.label} takes guidance from {low:g} to {high:g}; you gave {value:g}."
    if knob == "safety_tolerance":
        return (
            f"{caps.label} has no safety tolerance setting (it runs its own fixed safety "
            "check); leave it out."
        )
    formats = _join(sorted(f.value for f in caps.output_formats))
    shown = getattr(value, "value", value)
    return f"{caps.label} cannot return {str(shown).upper()} images; choose {formats}."


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
        problem += f" {labels} can take it."
    raise UnsupportedKnob(caps.name, problem, knob=knob, alternatives=names)


def require_key(caps: Capabilities, key_env: str, key: SecretStr | None) -> str:
    """The API key's value, or a clear refusal before any network call."""
    value = key.get_secret_value().strip() if key is not None else ""
    if not value:
        raise AuthError(
            caps.name,
            f"{key_env} is not set, so {caps.label} cannot be used. "
            "Set it in the environment or in .env.",
        )
    return value
