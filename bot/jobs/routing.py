"""Which provider runs a job.

A guild may allow several providers (``GuildSettings.providers``, in order of preference).
Unless the member or the guild pinned one, a job goes to the allowed provider that can serve
the request (its ``check``: references, text-to-image, knobs) with the shortest expected time
to a result::

    expected = typical × (1 + ahead ÷ concurrency)

``ahead`` is the provider's backlog across every process (queued, submitting, running: the
jobs that wait for or hold one of its slots), ``typical`` the median of its recent run times,
``concurrency`` the account's slots. The ``ahead ÷ concurrency`` part is the wait for a slot;
the ``1`` is the job itself, so an idle slow provider is not preferred to an idle fast one.
Ties go to the earlier provider in the guild's order. A submit that failed for good (the
provider is down) is moved with the same choice among the other allowed providers, or to the
deployment's ``KONTEXT_FALLBACK_PROVIDER`` when the guild allows no list.
The choice and its reason are stored on the job for Info to show: the reason as a catalog Text
(``route_text``, worded in the reader's language) and in English (``route_reason``).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import TypedDict

from bot.durations import duration_text
from bot.i18n import Text, t, text_to_json
from bot.models import GuildSettings, Job
from bot.providers.base import GenerationRequest, Provider
from bot.providers.errors import UnsupportedRequest
from storage.sql import Repository

from .errors import UnknownProvider
from .intake import checked_params
from .requests import EditRequest

log = logging.getLogger(__name__)


def allowed_providers(text: str, known: Collection[str]) -> tuple[str, ...]:
    """A guild's provider list from an admin's text ("fal, bfl"; "none" or "" clears it), in
    the order given; unknown names are refused, naming the ones this bot has."""
    names = [n.strip().lower() for n in text.replace(",", " ").split()]
    if names in ([], ["none"]):
        return ()
    unknown = [n for n in names if n not in known]
    if unknown:
        raise UnknownProvider(
            t(
                "errors.routing.unknown_provider",
                name=repr(unknown[0]),
                known=", ".join(sorted(known)),
            )
        )
    return tuple(dict.fromkeys(names))


def expected_seconds(ahead: int, typical: float, concurrency: int) -> float:
    """Seconds until a new job on a provider should have its result."""
    return typical * (1 + ahead / max(1, concurrency))


@dataclass(frozen=True)
class Estimate:
    provider: str
    ahead: int
    typical: float
    concurrency: int

    @property
    def expected(self) -> float:
        return expected_seconds(self.ahead, self.typical, self.concurrency)


class RouteColumns(TypedDict):
    """The columns of a job that keep why it went to its provider."""

    route_reason: str
    route_text: str


@dataclass(frozen=True)
class Route:
    provider: str
    reason: Text
    estimates: tuple[Estimate, ...] = ()

    def columns(self) -> RouteColumns:
        """The reason as the job keeps it: in English and as the Text (JSON)."""
        return RouteColumns(route_reason=str(self.reason), route_text=text_to_json(self.reason))


def request_check(request: GenerationRequest) -> Callable[[Provider], object]:
    """A provider's own check of a request already built (the fallback's)."""
    return lambda provider: provider.check(request)


class Router:
    """Chooses providers for the engine; every number comes from what it is given (the
    engine's slots and duration estimates, storage's backlog), so it holds no state itself."""

    def __init__(
        self,
        providers: Mapping[str, Provider],
        repo: Repository,
        concurrency: Callable[[str], int],
        typical: Callable[[str], Awaitable[float]],
        *,
        fallback: str | None = None,
    ) -> None:
        self._providers = providers
        self._concurrency = concurrency
        self._typical = typical
        self._backlog = repo.provider_backlog
        self._settings = repo.get_guild_settings
        self._fallback = fallback

    def _label(self, name: str) -> str:
        found = self._providers.get(name)
        return found.capabilities.label if found is not None else name

    async def route(self, request: EditRequest, settings: GuildSettings, default: str) -> Route:
        """The provider for a new job; raises UnknownProvider or UnsupportedRequest."""

        def check(provider: Provider) -> None:
            checked_params(request, settings, provider)

        pinned = request.provider or settings.provider
        if pinned is None and settings.providers:
            allowed = [n for n in settings.providers if n in self._providers]
            if not allowed:
                raise UnknownProvider(
                    t(
                        "errors.routing.none_available",
                        providers=", ".join(settings.providers),
                        available=", ".join(sorted(self._providers)),
                    )
                )
            return await self.choose(allowed, check)
        name = pinned or default
        provider = self._providers.get(name)
        if provider is None:
            available = ", ".join(sorted(self._providers)) or "none"
            raise UnknownProvider(t("errors.routing.not_available", name=name, available=available))
        check(provider)
        label = self._label(name)
        if request.provider:
            why = t("jobs.route.chosen", provider=label)
        elif settings.provider:
            why = t("jobs.route.server", provider=label)
        else:
            why = t("jobs.route.default", provider=label)
        return Route(name, why)

    async def choose(
        self,
        candidates: Sequence[str],
        check: Callable[[Provider], object],
        *,
        moved_from: str = "",
    ) -> Route:
        """The candidate with the shortest expected time whose ``check`` passes (a check
        raises UnsupportedRequest for a request the provider cannot serve)."""
        serving: list[str] = []
        refusals: list[UnsupportedRequest] = []
        for name in candidates:
            try:
                check(self._providers[name])
            except UnsupportedRequest as refusal:
                refusals.append(refusal)
            else:
                serving.append(name)
        if not serving:
            raise refusals[0]
        estimates: list[Estimate] = []
        for name in serving:
            ahead, typical = await self._backlog(name), await self._typical(name)
            estimates.append(Estimate(name, ahead, typical, self._concurrency(name)))
        best = min(estimates, key=lambda e: e.expected)  # the first of equals: preference
        return Route(best.provider, self._reason(best, estimates, moved_from), tuple(estimates))

    def _reason(self, best: Estimate, estimates: Sequence[Estimate], moved_from: str) -> Text:
        label = self._label(best.provider)
        estimate = t(
            "jobs.route.estimate",
            expected=duration_text(best.expected),
            ahead=best.ahead,
            typical=duration_text(best.typical),
            concurrency=best.concurrency,
        )
        others = [
            t(
                "jobs.route.compared",
                provider=self._label(e.provider),
                expected=duration_text(e.expected),
            )
            for e in estimates
            if e is not best
        ]
        if others:
            *firsts, compared = others
            for first in reversed(firsts):
                compared = t("jobs.route.compared_list", first=first, rest=compared)
            why = t("jobs.route.fastest", provider=label, estimate=estimate, others=compared)
        else:
            why = t("jobs.route.only", provider=label, estimate=estimate)
        if moved_from:
            return t("jobs.route.moved", failed=self._label(moved_from), route=why)
        return why

    async def fallback(self, job: Job, request: GenerationRequest) -> Route | None:
        """Where a job whose provider failed for good goes instead, if anywhere."""
        settings = await self._settings(job.guild_id)
        if settings.providers and not settings.provider:
            candidates = [n for n in settings.providers if n in self._providers]
        else:
            fallback = self._fallback
            candidates = [fallback] if fallback is not None and fallback in self._providers else []
        candidates = [n for n in candidates if n != job.provider]
        if not candidates:
            return None
        try:
            return await self.choose(candidates, request_check(request), moved_from=job.provider)
        except UnsupportedRequest as refusal:
            log.info("job %d: no fallback can serve it: %s", job.id, refusal)
            return None
