"""``kontext-bot providers``: which providers this deployment can use, what each can do, and
whether its key works (one cheap authenticated call where the provider has one)."""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from bot.clock import Clock
from bot.config import Settings
from bot.errors import KontextError
from bot.models import AspectRatio
from bot.providers import CAPABILITIES, PROVIDERS, build_provider
from bot.providers.base import Capabilities
from bot.providers.common import HttpProvider


@dataclass(frozen=True)
class ProviderStatus:
    name: str
    caps: Capabilities
    model: str | None  # the chosen tier where the provider offers several
    key: str  # "works", "refused", "untested" or "missing"
    detail: str  # what the check said (never the key)


def key_setting(name: str) -> str:
    """The environment variable that holds a provider's key."""
    return PROVIDERS[name].KEY_ENV


async def provider_statuses(
    settings: Settings, client: httpx.AsyncClient, clock: Clock
) -> list[ProviderStatus]:
    """Every registered provider; the ones with a key are checked, one call each at most."""
    found = []
    for name in CAPABILITIES:
        choice = settings.model_choice(name)
        if settings.api_key(name) is None:
            caps = CAPABILITIES[name]
            found.append(ProviderStatus(name, caps, choice, "missing", key_setting(name)))
            continue
        provider = build_provider(name, settings, client, clock)
        caps = provider.capabilities
        try:
            said = await provider.key_status() if isinstance(provider, HttpProvider) else None
        except KontextError as err:
            found.append(ProviderStatus(name, caps, choice, "refused", err.user_message))
            continue
        finally:
            await provider.aclose()
        if said is None:
            detail = "no cheap authenticated call exists for this provider, so it was not tried"
            found.append(ProviderStatus(name, caps, choice, "untested", detail))
        else:
            found.append(ProviderStatus(name, caps, choice, "works", said))
    return found


def describe(status: ProviderStatus) -> list[str]:
    """Plain-text lines for one provider."""
    caps = status.caps
    model = caps.edit_model
    if status.model is not None:
        others = [m for m in caps.models if m != status.model]
        also = f"; also {', '.join(others)}" if others else ""
        model = f"{status.model} ({caps.edit_model}{also})"
    low = 0 if caps.text_to_image else caps.min_references
    guidance = "–" if caps.guidance_range is None else "{:g}–{:g}".format(*caps.guidance_range)
    price = f"${caps.price_per_image:.3f}".rstrip("0") if caps.price_per_image else "?"
    facts = [
        f"references {low}–{min(caps.max_references, 4)}",
        f"text-to-image {'yes' if caps.text_to_image else 'no'}",
        f"images/request {caps.max_num_images}",
        f"ratios {' '.join(r.value for r in AspectRatio if r in caps.aspect_ratios)}",
        f"guidance {guidance}",
        f"safety tolerance {'yes' if caps.safety_tolerance else 'no'}",
        f"formats {', '.join(sorted(f.value for f in caps.output_formats))}",
        f"cancel {'yes' if caps.cancel else 'no'}",
        f"sync {'yes' if caps.sync_mode else 'no'}",
        f"concurrency {caps.default_concurrency}",
        f"{price}/image",
    ]
    key = {
        "works": f"key works: {status.detail}",
        "refused": f"key refused: {status.detail}",
        "untested": f"key set: {status.detail}",
        "missing": f"not configured: set {status.detail}",
    }[status.key]
    return [f"{status.name}  {caps.label}  model {model}", "  " + " · ".join(facts), f"  {key}"]
