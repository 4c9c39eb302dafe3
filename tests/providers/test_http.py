"""The one retry/timeout policy: what is retried, how long it waits, what is never logged."""

from __future__ import annotations

import logging
import random
from datetime import UTC, datetime
from email.utils import format_datetime

import httpx
import pytest

from bot.providers.base import Finished, GenerationRequest, Provider, Submitted
from bot.providers.errors import ProviderError, RateLimited, UpstreamError
from bot.providers.http import HttpRetryPolicy, parse_retry_after
from tests.fakes import FakeProvider, Outcome
from tests.providers.conftest import (
    STALL_POLICY,
    TEST_POLICY,
    SteppingClock,
    provider_for,
    reference,
)


class FailingConnect(httpx.AsyncBaseTransport):
    """Real transport, except the first ``failures`` requests fail to connect."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.attempts = 0
        self._real = httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.attempts += 1
        if self.attempts <= self.failures:
            raise httpx.ConnectError("connection refused", request=request)
        return await self._real.handle_async_request(request)

    async def aclose(self) -> None:
        await self._real.aclose()


def test_backoff_doubles_to_a_cap_and_jitter_stays_in_range() -> None:
    rng = random.Random(1)
    plain = HttpRetryPolicy(jitter=False, base_delay=0.5, max_delay=4.0)
    assert [plain.backoff(n, rng) for n in range(1, 6)] == [0.5, 1.0, 2.0, 4.0, 4.0]
    jittery = HttpRetryPolicy(base_delay=1.0, max_delay=8.0)
    for attempt in range(1, 6):
        full = min(8.0, 2 ** (attempt - 1))
        assert full / 2 <= jittery.backoff(attempt, rng) <= full


def test_parse_retry_after() -> None:
    assert parse_retry_after("7") == 7
    assert parse_retry_after(" 2.5 ") == 2.5
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None
    when = format_datetime(datetime.fromtimestamp(1_800_000_030, tz=UTC), usegmt=True)
    assert parse_retry_after(when, now=1_800_000_000) == 30


async def test_submit_is_retried_when_the_connection_never_opened(
    aiml: FakeProvider, clock: SteppingClock
) -> None:
    transport = FailingConnect(failures=2)
    async with httpx.AsyncClient(transport=transport) as client:
        provider = provider_for(aiml, client, clock)
        result = await clock.run(
            provider.submit(GenerationRequest(prompt="x", references=(reference(),)))
        )
    assert result.outputs
    assert transport.attempts == 3 and aiml.submits == 1
    assert clock.sleeps == [0.5, 1.0]


async def test_connect_errors_give_up_after_the_budget(
    aiml: FakeProvider, clock: SteppingClock
) -> None:
    transport = FailingConnect(failures=10)
    async with httpx.AsyncClient(transport=transport) as client:
        provider = provider_for(aiml, client, clock)
        with pytest.raises(UpstreamError, match="Could not reach AIML API"):
            await clock.run(
                provider.submit(GenerationRequest(prompt="x", references=(reference(),)))
            )
    assert transport.attempts == TEST_POLICY.max_attempts and aiml.submits == 0


async def _submitted(
    fake: FakeProvider,
    client: httpx.AsyncClient,
    clock: SteppingClock,
    policy: HttpRetryPolicy = TEST_POLICY,
) -> tuple[Provider, str]:
    fake.script("submit", Outcome.processing(polls=0))
    provider = provider_for(fake, client, clock, policy=policy)
    submitted = await provider.submit(GenerationRequest(prompt="x", references=(reference(),)))
    assert isinstance(submitted, Submitted)
    return provider, submitted.handle


async def test_poll_honours_retry_after(
    wavespeed: FakeProvider, client: httpx.AsyncClient, clock: SteppingClock
) -> None:
    provider, handle = await _submitted(wavespeed, client, clock)
    wavespeed.script("poll", Outcome.rate_limited(7), Outcome.http(408), Outcome.http(409))
    await clock.run(provider.poll(handle))
    assert clock.sleeps == [7.0, 2.0, 2.0]
    assert wavespeed.polls == 4


async def test_a_retry_after_beyond_the_cap_is_handed_back(
    wavespeed: FakeProvider, client: httpx.AsyncClient, clock: SteppingClock
) -> None:
    provider, handle = await _submitted(wavespeed, client, clock)
    wavespeed.script("poll", Outcome.rate_limited(3600))
    with pytest.raises(RateLimited) as caught:
        await clock.run(provider.poll(handle))
    assert caught.value.retry_after == 3600 and clock.sleeps == []


async def test_a_poll_read_timeout_is_retried(
    modelslab: FakeProvider, client: httpx.AsyncClient, clock: SteppingClock
) -> None:
    provider, handle = await _submitted(modelslab, client, clock, STALL_POLICY)
    modelslab.script("poll", Outcome.stall())
    result = await clock.run(provider.poll(handle))
    modelslab.release()
    assert isinstance(result, Finished) and modelslab.polls == 2


async def test_secrets_never_reach_logs_or_errors(
    any_fake: FakeProvider,
    client: httpx.AsyncClient,
    clock: SteppingClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    key = any_fake.api_key
    caplog.set_level(logging.DEBUG)
    # The provider echoes the key back in its error text.
    any_fake.script("submit", Outcome.http(503, f"bad request for key {key}"))
    provider = provider_for(any_fake, client, clock)
    with pytest.raises(ProviderError) as caught:
        await clock.run(provider.submit(GenerationRequest(prompt="x", references=(reference(),))))
    error = caught.value
    texts = [str(error), error.user_message, error.detail or "", repr(error.args)]
    texts += [r.getMessage() for r in caplog.records]
    assert caplog.records, "the test must see the log records it checks"
    assert not [t for t in texts if key in t]
    assert "***" in (error.detail or "")
