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
The choice and its reason are stored on the job (``route_reason``) for Info to show.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass

from bot.durations import format_duration
from bot.i18n import t
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


@dataclass(frozen=True)
class Route:
    provider: str
    reason: str
    estimates: tuple[Estimate, ...] = ()


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
        if request.provider:
            why = "you chose it"
        elif settings.provider:
            why = "this server uses it"
        else:
            why = "the bot's default provider"
        return Route(name, f"{self._label(name)}: {why}.")

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

    def _reason(self, best: Estimate, estimates: Sequence[Estimate], moved_from: str) -> str:
        label = self._label(best.provider)
        head = f"{self._label(moved_from)} is not answering; " if moved_from else ""
        why = (
            f"expected in about {format_duration(best.expected)} "
            f"({best.ahead} ahead, about {format_duration(best.typical)} each, "
            f"{best.concurrency} at once)"
        )
        others = [e for e in estimates if e is not best]
        if not others:
            return f"{head}{label}: the only allowed provider that can do this, {why}."
        compared = ", ".join(
            f"{self._label(e.provider)} about {format_duration(e.expected)}" for e in others
        )
        return f"{head}{label}: {why}; {compared}."

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
