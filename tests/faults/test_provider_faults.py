"""Every provider, through the job engine and through the CLI's path, against every fault.

Each row scripts one misbehaviour on the provider's fake and states what must follow: the
job's terminal status and code, words of the reason a person reads, how many billable
requests (submits) reached the provider, and a bound on the time it took on the injected
clock. Set ``KONTEXT_FAULT_TABLE`` to a file name to have the results written as a table.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, replace

import pytest

from bot.errors import KontextError
from bot.generate import generate
from bot.jobs import JobFailed
from bot.media import DownloadFailed
from bot.models import JobStatus
from bot.providers.base import GenerationRequest, ReferenceImage
from bot.providers.errors import (
    AuthError,
    BadAnswer,
    CreditsExhausted,
    InvalidInput,
    Moderated,
    ProviderTimeout,
    RateLimited,
    UpstreamError,
)
from storage.sql import Repository
from tests.fakes import FakeProvider, Outcome
from tests.jobs.conftest import edit

from .conftest import DEADLINE, IMAGE_CAP, RESULTS, drive, open_rig

ASYNC = ("modelslab", "wavespeed", "bfl", "fal", "replicate")
#: Providers whose own failure and moderation wording is tested in tests/providers instead.
OWN_WORDS = ("bfl", "fal", "replicate")
_SHARED_ONLY = ("error inside HTTP 200", "moderation")
#: Provider text that tries to ping: it must reach nobody.
PINGING = "NSFW content detected @everyone <@123>"
AT_ONCE = 1.0
SUBMIT_LIMIT = 180.0  # HttpRetryPolicy.submit_timeout: one submit exchange, whole answer


@dataclass(frozen=True)
class Row:
    fault: str
    script: Callable[[FakeProvider], None]
    status: JobStatus  # the engine's terminal status
    code: str | None  # the job's error code (None: done)
    words: str  # in the reason the requester reads
    cli: type[KontextError] | None  # what generate() raises (None: images)
    cli_words: str
    submits: int  # billable requests that reached the provider
    seconds: float  # bound on injected-clock time, both paths


def _submit(outcome: Outcome) -> Callable[[FakeProvider], None]:
    # A stall's release event belongs to one run: each run gets its own.
    return lambda fake: fake.script("submit", replace(outcome, release=asyncio.Event()))


def _cdn(outcome: Outcome) -> Callable[[FakeProvider], None]:
    return lambda fake: fake.script("cdn", replace(outcome, release=asyncio.Event()))


def _private(fake: FakeProvider) -> None:
    fake.script("submit", Outcome.success(result_url=f"https://localhost:{fake.port}/cdn/x.png"))


def _forever(fake: FakeProvider) -> None:
    if fake.name in ASYNC:
        fake.script("submit", Outcome.processing(polls=10**9))
    else:
        fake.script("submit", Outcome.stall())  # a synchronous answer that never comes


def _poll_hangs(fake: FakeProvider) -> None:
    fake.script("submit", Outcome.processing(polls=1))
    fake.set_default("poll", Outcome.stall())


def _moderated(fake: FakeProvider) -> None:
    if fake.name == "wavespeed":  # the task fails later, as WaveSpeed reports it
        fake.script("submit", Outcome.processing(polls=1, then=Outcome.failed(PINGING)))
    else:  # inside HTTP 200 (AIML: a 200 body with words and no image)
        fake.script("submit", Outcome.failed(PINGING))


def _error_in_200(fake: FakeProvider) -> None:
    fake.script("submit", Outcome.failed("Internal server error", status=500))


def _never(name: str) -> tuple[JobStatus, str, str, type[KontextError], str, float]:
    if name in ASYNC:
        return (
            JobStatus.EXPIRED,
            "expired",
            "still working on it or not answering",
            ProviderTimeout,
            "did not finish within 300 s",
            DEADLINE,
        )
    return (
        JobStatus.FAILED,
        "timed_out",
        "took too long",
        ProviderTimeout,
        "may still be running",
        SUBMIT_LIMIT,
    )


def rows_for(name: str) -> list[Row]:
    failed, down, once = JobStatus.FAILED, "provider_down", "not sent again"
    never = _never(name)
    rows = [
        Row("401", _submit(Outcome.http(401)), failed, "auth", "API key was refused",
            AuthError, "refused the API key", 1, AT_ONCE),
        Row("402", _submit(Outcome.http(402)), failed, "credits", "out of credits",
            CreditsExhausted, "out of credits", 1, AT_ONCE),
        Row("403", _submit(Outcome.http(403)), failed, "auth", "API key was refused",
            AuthError, "refused the API key", 1, AT_ONCE),
        Row("422", _submit(Outcome.http(422, "image is required")), failed, "bad_input",
            "image is required", InvalidInput, "image is required", 1, AT_ONCE),
        Row("429, Retry-After 2 s", _submit(Outcome.rate_limited(2)), JobStatus.DONE, None,
            "", None, "", 2, 10.0),
        Row("429, Retry-After 1 h", _submit(Outcome.rate_limited(3600)), failed,
            "rate_limited", "asked it to wait 1 h", RateLimited, "Try again in 3600 s", 1,
            AT_ONCE),
        Row("500", _submit(Outcome.http(500)), failed, down, once, UpstreamError,
            "HTTP 500", 1, AT_ONCE),
        Row("502", _submit(Outcome.http(502)), failed, down, once, UpstreamError,
            "HTTP 502", 1, AT_ONCE),
        Row("503", _submit(Outcome.http(503)), failed, down, once, UpstreamError,
            "HTTP 503", 1, AT_ONCE),
        Row("504", _submit(Outcome.http(504, "Generation timeout")), failed, "timed_out",
            "Generation timeout", ProviderTimeout, "timed out", 1, AT_ONCE),
        Row("connection reset", _submit(Outcome.drop()), failed, down, once,
            UpstreamError, "Could not reach", 1, AT_ONCE),
        Row("hang (submit)", _submit(Outcome.stall()), failed, "timed_out", "took too long",
            ProviderTimeout, "may still be running", 1, SUBMIT_LIMIT),
        Row("trickle (submit)", _submit(Outcome.trickle(5)), failed, "timed_out",
            "took too long", ProviderTimeout, "may still be running", 1, SUBMIT_LIMIT),
        Row("oversized JSON (32 MiB, chunked)", _submit(Outcome.huge()), failed, "bad_answer",
            "malformed or too large", BadAnswer, "too large", 1, AT_ONCE),
        Row("malformed JSON", _submit(Outcome.malformed()), failed, "bad_answer",
            "could not use", BadAnswer, "not valid JSON", 1, AT_ONCE),
        Row("HTML error page (502)", _submit(Outcome.html(502)), failed, down, once,
            UpstreamError, "HTTP 502", 1, AT_ONCE),
        Row("error inside HTTP 200", _error_in_200, failed, down, 'said: "Internal server',
            UpstreamError, "Internal server error", 1, AT_ONCE),
        Row("moderation", _moderated, JobStatus.MODERATED, "moderated",
            'said: "NSFW content detected', Moderated, "NSFW content detected",
            1, 10.0),
        Row("never finishes", _forever, never[0], never[1], never[2], never[3], never[4], 1,
            never[5]),
        Row("result URL 404", _cdn(Outcome.http(404)), failed, "download_failed",
            "answered HTTP 404", DownloadFailed, "answered HTTP 404", 1, AT_ONCE + 10),
        Row("result URL at a private address", _private, failed, "download_failed",
            "private network address", DownloadFailed, "private network address", 1,
            AT_ONCE + 10),
        Row("result is not an image", _cdn(Outcome.not_image()), failed, "bad_output",
            "not a usable image", UpstreamError, "not a usable image", 1, AT_ONCE + 10),
        Row("result download hangs", _cdn(Outcome.stall()), JobStatus.EXPIRED, "expired",
            "still working on it or not answering", ProviderTimeout,
            "did not finish within 300 s", 1, DEADLINE),
        Row("result download trickles", _cdn(Outcome.trickle(5)), JobStatus.EXPIRED,
            "expired", "still working on it or not answering", ProviderTimeout,
            "did not finish within 300 s", 1, DEADLINE),
        Row("result oversized (6 MiB > 4 MiB)", _cdn(Outcome.huge(6 * 1024 * 1024)), failed,
            "download_failed", "larger than", DownloadFailed, "larger than", 1, AT_ONCE + 10),
    ]  # fmt: skip
    poll_hang = Row("hang (every poll)", _poll_hangs, JobStatus.EXPIRED, "expired",
                    "still working on it or not answering", ProviderTimeout,
                    "did not answer in time", 1, DEADLINE)  # fmt: skip
    return [*rows, poll_hang] if name in ASYNC else rows


CASES = [
    (name, row)
    for name in ("aimlapi", "modelslab", "wavespeed", *OWN_WORDS)
    for row in rows_for(name)
    if name not in OWN_WORDS or row.fault not in _SHARED_ONLY
]
IDS = [f"{name}-{row.fault}" for name, row in CASES]


def _reference() -> ReferenceImage:
    ref = edit().images[0]
    return ReferenceImage(
        data=ref.data, mime=ref.mime, width=ref.width, height=ref.height, url=ref.url
    )


@pytest.mark.parametrize(("name", "row"), CASES, ids=IDS)
async def test_engine(name: str, row: Row, repo: Repository) -> None:
    async with open_rig(name, repo) as rig:
        row.script(rig.fake)
        engine = rig.engine()
        await engine.start()
        try:
            job = await engine.submit(edit("make it blue", provider=name))
            await drive(rig.clock, rig.fake, engine.run_until_idle(), engine=engine)
        finally:
            await engine.stop()
        final = await repo.get_job(job.id)
        assert final is not None and final.finished_at is not None
        elapsed = final.finished_at - final.created_at
        reason = final.error_message or ""
        RESULTS.append(
            (name, row.fault, "engine", final.status.value, final.error_code or "",
             reason, rig.fake.submits, rig.fake.polls, rig.fake.count("cdn"), elapsed)
        )  # fmt: skip
        assert final.status is row.status, reason
        assert final.error_code == row.code, reason
        assert row.words in reason
        assert "Traceback" not in reason and "unexpected" not in reason.lower()
        assert "@everyone" not in reason and "<@123>" not in reason
        assert rig.fake.submits == row.submits
        assert elapsed <= row.seconds
        if row.status is JobStatus.DONE:
            assert job.id in rig.deliverer.delivered
        else:
            (ended,) = [e for e in rig.events if e.kind in ("failed", "expired")]
            assert not isinstance(ended, JobFailed) or ended.reason == reason


@pytest.mark.parametrize(("name", "row"), CASES, ids=IDS)
async def test_cli_path(name: str, row: Row, repo: Repository) -> None:
    async with open_rig(name, repo) as rig:
        row.script(rig.fake)
        provider = rig.provider(rig.clock)
        request = GenerationRequest(prompt="make it blue", references=(_reference(),))
        started = rig.clock.monotonic()
        work = generate(
            provider,
            request,
            fetcher=rig.fetcher(),
            clock=rig.clock,
            deadline_seconds=DEADLINE,
            max_result_bytes=IMAGE_CAP,
        )
        error: KontextError | None = None
        try:
            images = await drive(rig.clock, rig.fake, work)
        except KontextError as err:
            error = err
        elapsed = rig.clock.monotonic() - started
        said = error.user_message if error else f"{len(images)} image(s)"
        RESULTS.append(
            (name, row.fault, "cli", type(error).__name__ if error else "images", "", said,
             rig.fake.submits, rig.fake.polls, rig.fake.count("cdn"), elapsed)
        )  # fmt: skip
        if row.cli is None:
            assert error is None and len(images) == 1
        else:
            assert type(error) is row.cli, said
            assert row.cli_words in said
            assert "@everyone" not in said and "<@123>" not in said
            assert "\n" not in said
        assert rig.fake.submits == row.submits
        assert elapsed <= row.seconds
