"""Capability checks: refuse a request before any network call, saying why and who can.

Every provider's ``check`` runs :func:`check_request` against its own
:class:`~bot.providers.base.Capabilities` and the static catalog of all registered providers,
so a refusal can name the alternatives ("ModelsLab takes at most 2 reference images; you gave
3. AIML API (up to 4) and WaveSpeed (up to 4) can take 3.").

``safety_tolerance`` is deliberately *not* refused where unsupported: guilds always carry a
tolerance, and providers without the field run their own fixed safety checker instead.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from pydantic import SecretStr

from bot.models import MAX_REFERENCES
from bot.providers.base import Capabilities, GenerationRequest
from bot.providers.errors import AuthError, UnsupportedRequest


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
    if request.output_format not in caps.output_formats:
        raise UnsupportedRequest(
            caps.name,
            f"{caps.label} cannot return {request.output_format.value.upper()} images; "
            f"choose {_join(sorted(f.value for f in caps.output_formats))}.",
        )
    if request.seed is not None and not caps.seed:
        raise UnsupportedRequest(caps.name, f"{caps.label} does not take a seed; leave it out.")
    if request.seed is not None and request.seed > caps.max_seed:
        raise UnsupportedRequest(
            caps.name,
            f"{caps.label} takes seeds from 1 to {caps.max_seed}; you gave {request.seed}.",
        )
    if request.guidance is not None:
        if caps.guidance_range is None:
            raise UnsupportedRequest(
                caps.name, f"{caps.label} does not take a guidance value; leave it out."
            )
        low, high = caps.guidance_range
        if not low <= request.guidance <= high:
            raise UnsupportedRequest(
                caps.name,
                f"{caps.label} takes guidance from {low:g} to {high:g}; "
                f"you gave {request.guidance:g}.",
            )


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
