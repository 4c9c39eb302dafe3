"""The guards every fault relies on: a whole-exchange bound on the injected clock, a size cap
that refuses an answer before it is read, and provider text made safe to show."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest

from bot.clock import ManualClock, within
from bot.providers.errors import BadAnswer, UpstreamError
from bot.providers.http import MAX_JSON_BYTES, Call, ProviderHttp


async def test_within_returns_the_result_in_time() -> None:
    async def work() -> int:
        return 7

    assert await within(ManualClock(), 5, work()) == 7


async def test_within_cancels_the_work_at_the_bound() -> None:
    clock = ManualClock()
    stopped = asyncio.Event()

    async def forever() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            stopped.set()

    task = asyncio.ensure_future(within(clock, 30, forever()))
    for _ in range(3):  # the task, then its timer, start
        await asyncio.sleep(0)
    assert clock.sleepers == 0 and clock.next_alarm() == clock.now() + 30
    clock.advance(29.9)
    await asyncio.sleep(0)
    assert not task.done()
    clock.advance(0.1)
    with pytest.raises(TimeoutError):
        await task
    assert stopped.is_set() and clock.next_alarm() is None


async def test_within_an_expired_bound_does_no_work() -> None:
    ran = []

    async def work() -> None:
        ran.append(1)

    with pytest.raises(TimeoutError):
        await within(ManualClock(), 0, work())
    assert ran == []


class _Endless(httpx.AsyncByteStream):
    """A body that counts how much of it was read."""

    def __init__(self) -> None:
        self.read = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while True:
            self.read += 65536
            yield b" " * 65536


@pytest.mark.parametrize("declared", [True, False])
async def test_an_answer_over_the_cap_is_refused_while_it_streams(declared: bool) -> None:
    body = _Endless()
    size = str(1536 * 1024 * 1024)  # the 1.5 GB answer

    def answer(request: httpx.Request) -> httpx.Response:
        headers = {"content-type": "application/json"}
        if declared:
            headers["content-length"] = size
        return httpx.Response(200, headers=headers, stream=body)

    async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as client:
        http = ProviderHttp(
            name="p", label="P", key_env="P_KEY", secret=None, client=client, clock=ManualClock()
        )
        with pytest.raises(BadAnswer, match="too large") as caught:
            await http.request("GET", "https://p.example/x", Call.IDEMPOTENT)
    assert caught.value.nothing_billed  # a poll: asking again bills nothing
    assert body.read == (0 if declared else MAX_JSON_BYTES + 65536)


async def test_an_oversized_error_page_is_judged_by_its_status() -> None:
    body = _Endless()

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(503, headers={"content-type": "text/html"}, stream=body)

    async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as client:
        http = ProviderHttp(
            name="p", label="P", key_env="P_KEY", secret=None, client=client, clock=ManualClock()
        )
        with pytest.raises(UpstreamError, match="HTTP 503") as caught:
            await http.request("POST", "https://p.example/x", Call.SUBMIT)
    assert not isinstance(caught.value, BadAnswer) and not caught.value.nothing_billed
    assert body.read == MAX_JSON_BYTES + 65536


async def test_provider_text_is_one_clean_line_that_pings_nobody() -> None:
    async with httpx.AsyncClient() as client:
        http = ProviderHttp(
            name="p", label="P", key_env="P_KEY", secret="sk-1", client=client, clock=ManualClock()
        )
        said = http.safe("bad key sk-1\n\x1b[31mred\u202e @everyone <@123>")
        assert len(http.safe("x" * 1000)) == 200
    assert said == "bad key *** \\x1b[31mred\\u202e \uff20everyone <\uff20123>"
