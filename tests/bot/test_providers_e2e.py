"""/edit end to end with each of Black Forest Labs, fal.ai and Replicate as the provider:
the real bot on the fake Discord, the provider's fake at the network edge."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.bot.conftest import Harness
from tests.fakes import FAKES, FakeProvider, Outcome, require_docs

LABELS = {"bfl": "Black Forest Labs", "fal": "fal.ai", "replicate": "Replicate"}


@pytest.fixture(params=sorted(LABELS))
async def provider(request: pytest.FixtureRequest) -> AsyncIterator[FakeProvider]:
    async with FAKES[request.param](docs=require_docs()) as fake:
        if fake.name == "replicate":
            fake.script("submit", Outcome.success())  # answered in the POST (Prefer: wait)
        else:
            fake.script("submit", Outcome.processing(polls=0))  # one poll
        yield fake
    fake.assert_clean()


async def test_edit_is_delivered_through_each_new_provider(kontext: Harness) -> None:
    provider = kontext.provider
    done = await kontext.edit_done("make it blue")
    assert len(done.result.attachments) == 1
    assert LABELS[provider.name] in done.result.content
    job = await kontext.job(done.job_id)
    assert job.status.value == "done" and job.provider == provider.name
    assert job.route_reason == f"{LABELS[provider.name]}: the bot's default provider."
    assert provider.submits == 1 and provider.count("cdn") == 1
