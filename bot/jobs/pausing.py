"""Pausing a provider whose account was refused (a bad key, no credits).

Failing every queued job one by one when the key is dead helps nobody: the first job that
meets :class:`~bot.providers.errors.AuthError` or
:class:`~bot.providers.errors.CreditsExhausted` at submit pauses its provider instead. The
engine stops claiming for it, the job goes back to the queue (with a ``paused`` event for the
requester), and the :class:`PauseHandler` records the pause for every process and tells the
operator once. A probe lets one trial job through now and then; the first job a paused
provider accepts resumes it.

A job the provider already accepted that meets these errors while being polled pauses the
provider too, and is polled again (slowly) until it finishes or its deadline passes.

Pausing is on only when a handler is installed (``engine.pauses.handler``); without one these
errors end the job as before.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Protocol

from bot.providers.errors import AuthError, CreditsExhausted, ProviderError

from .lanes import Lane

log = logging.getLogger(__name__)

ACCOUNT_ERRORS = (AuthError, CreditsExhausted)


class PauseHandler(Protocol):
    """Records pauses for every process and tells the operator (bot.ops.pauses)."""

    async def paused(self, provider: str, error: ProviderError) -> None: ...

    async def resumed(self, provider: str) -> None: ...


class LanePauses:
    """Which of this engine's providers are paused, and the trial job a probe allows."""

    def __init__(self, lanes: Mapping[str, Lane]) -> None:
        self._lanes = lanes
        self.handler: PauseHandler | None = None
        #: Why each paused provider is paused ("auth" or "credits"), as last known.
        self.paused_code: dict[str, str] = {}

    @property
    def enabled(self) -> bool:
        return self.handler is not None

    def is_paused(self, provider: str) -> bool:
        lane = self._lanes.get(provider)
        return lane is not None and lane.paused

    def pause(self, provider: str, code: str | None = None) -> bool:
        """Stop claiming jobs for ``provider`` in this engine; ``True`` if it was running."""
        if code is not None:
            self.paused_code[provider] = code
        lane = self._lanes.get(provider)
        if lane is None or lane.paused:
            return False
        lane.paused = True
        log.warning("provider %s paused in this engine", provider)
        return True

    def resume(self, provider: str) -> None:
        lane = self._lanes.get(provider)
        if lane is not None and lane.paused:
            lane.paused = lane.trial = False
            lane.wake.set()
            log.warning("provider %s resumed in this engine", provider)

    def allow_trial(self, provider: str) -> None:
        """Let one queued job of a paused provider through, to test its account."""
        lane = self._lanes.get(provider)
        if lane is not None and lane.paused:
            lane.trial = True
            lane.wake.set()

    async def accepted(self, provider: str) -> None:
        """The provider accepted a job: its account works, so a pause is over. The shared
        record goes first: an upkeep that reads it meanwhile must not pause this engine again."""
        if self.handler is not None and self.is_paused(provider):
            try:
                await self.handler.resumed(provider)
            except Exception:
                log.exception("recording that %s resumed failed", provider)
            self.resume(provider)
