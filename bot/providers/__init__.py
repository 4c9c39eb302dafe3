"""The provider registry: an explicit table, no discovery.

``CAPABILITIES`` is static so that a refusal on one provider can name the others that would
serve the request. Adding a provider is one module, one line in each table here and its
facts in ``capabilities.toml``.
"""

from __future__ import annotations

import httpx

from bot.clock import Clock
from bot.config import Settings
from bot.i18n import t
from bot.providers import aimlapi, bfl, fal, modelslab, replicate, wavespeed
from bot.providers.base import Capabilities, Provider
from bot.providers.common import HttpProvider
from bot.providers.errors import UnsupportedRequest
from bot.providers.http import DEFAULT_POLICY, HttpRetryPolicy

#: Each provider is an :class:`~bot.providers.common.HttpProvider` built from the settings.
PROVIDERS: dict[str, type[HttpProvider]] = {
    "aimlapi": aimlapi.AimlApiProvider,
    "modelslab": modelslab.ModelsLabProvider,
    "wavespeed": wavespeed.WaveSpeedProvider,
    "bfl": bfl.BflProvider,
    "fal": fal.FalProvider,
    "replicate": replicate.ReplicateProvider,
}

CAPABILITIES: dict[str, Capabilities] = {
    "aimlapi": aimlapi.CAPABILITIES,
    "modelslab": modelslab.CAPABILITIES,
    "wavespeed": wavespeed.CAPABILITIES,
    "bfl": bfl.CAPABILITIES,
    "fal": fal.CAPABILITIES,
    "replicate": replicate.CAPABILITIES,
}


def build_provider(
    name: str,
    settings: Settings,
    client: httpx.AsyncClient,
    clock: Clock,
    *,
    policy: HttpRetryPolicy = DEFAULT_POLICY,
) -> Provider:
    """The provider registered as ``name``, sharing the caller's HTTP client and clock."""
    factory = PROVIDERS.get(name)
    if factory is None:
        known = ", ".join(sorted(PROVIDERS))
        raise UnsupportedRequest(
            name,
            t("errors.provider.unknown", name=repr(name), known=known),
            alternatives=sorted(PROVIDERS),
        )
    return factory(settings, client, clock, catalog=CAPABILITIES, policy=policy)


__all__ = ["CAPABILITIES", "PROVIDERS", "build_provider"]
