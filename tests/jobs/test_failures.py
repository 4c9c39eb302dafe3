"""Errors per kind: retried with backoff when transient, never when they cannot help."""

from __future__ import annotations

import pytest

from bench.fakeprovider import FakeProvider, Plan, capabilities, png_bytes
from bot.errors import KontextError
from bot.jobs import EngineConfig, JobEvent, JobFailed, JobFallback, JobRetryPolicy
from bot.models import GuildSettings, JobStatus, NsfwPolicy
from bot.providers.base import Pending
from bot.providers.errors import (
    AuthError,
    BadAnswer,
    CreditsExhausted,
    InvalidInput,
    Moderated,
    ProviderError,
    ProviderTimeout,
    UpstreamError,
)

from .conftest import T0, Harness, edit


def _down() -> UpstreamError:
    """Unreachable: the submit never left, so sending it again cannot bill twice."""
    return UpstreamError("fake", "Fake is down", detail="ConnectError", nothing_billed=True)


async def _run_one(harness: Harness, prompt: str, **config: object) -> int:
    engine = harness.engine(EngineConfig(default_provider="fake", **config))  # type: ignore[arg-type]
    await engine.start()
    job = await engine.submit(edit(prompt))
    await engine.run_until_idle()
    return job.id


async def _failure(harness: Harness, job_id: int) -> JobFailed:
    (event,) = harness.of(job_id, "failed")
    assert isinstance(event, JobFailed)
    return event


async def test_transient_submit_errors_are_retried_with_backoff(harness: Harness) -> None:
    harness.provider.script("x", Plan(submit_error=_down()), Plan(submit_error=_down()), Plan())
    job_id = await _run_one(harness, "x", retry=JobRetryPolicy(jitter=0.0, base_delay=2.0))
    job = await harness.repo.get_job(job_id)
    assert job is not None and job.status is JobStatus.DONE and job.attempts == 2
    assert harness.provider.submits["x"] == 3
    starts = [e.at - T0 for e in harness.of(job_id, "started")]
    assert starts == [0.0, 2.0, 6.0]  # 2 s, then 4 s


async def test_jitter_stays_within_its_share(harness: Harness) -> None:
    policy = JobRetryPolicy(base_delay=10.0, jitter=0.25)
    assert policy.delay(1, 0.0) == 7.5 and policy.delay(1, 0.999999) == pytest.approx(12.5)
    assert policy.delay(3, 0.5) == 40.0
    assert JobRetryPolicy(max_delay=60.0).delay(10, 0.5) == 60.0


async def test_exhausted_retries_fail_as_provider_down(harness: Harness) -> None:
    harness.provider.default = Plan(submit_error=_down())
    job_id = await _run_one(harness, "x")
    assert harness.provider.submits["x"] == 3
    failure = await _failure(harness, job_id)
    assert failure.code == "provider_down"
    assert "Fake is not answering" in failure.reason and "try again" in failure.reason
    job = await harness.repo.get_job(job_id)
    assert job is not None and job.status is JobStatus.FAILED and job.error_code == "provider_down"


async def test_submit_timeouts_end_as_timed_out(harness: Harness) -> None:
    harness.provider.default = Plan(
        submit_error=ProviderTimeout("fake", "slow", nothing_billed=True)
    )
    job_id = await _run_one(harness, "x")
    assert (await _failure(harness, job_id)).code == "timed_out"
    assert harness.provider.submits["x"] == 3


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (
            UpstreamError("fake", "Fake had a problem (HTTP 503)", said="overloaded"),
            "provider_down",
        ),
        (ProviderTimeout("fake", "no answer in time"), "timed_out"),
        (BadAnswer("fake", "not JSON"), "bad_answer"),
    ],
)
async def test_a_submit_that_may_have_started_is_never_sent_again(
    harness: Harness, error: ProviderError, code: str
) -> None:
    backup = FakeProvider(capabilities("backup"), clock=harness.clock)
    harness.providers["backup"] = backup
    harness.provider.default = Plan(submit_error=error)
    job_id = await _run_one(harness, "x", fallback_provider="backup")
    assert harness.provider.submits["x"] == 1 and backup.submits["x"] == 0
    failure = await _failure(harness, job_id)
    assert failure.code == code and "Traceback" not in failure.reason
    if error.said:
        assert failure.reason.endswith('Fake said: "overloaded"')
        assert "not sent again" in failure.reason


@pytest.mark.parametrize(
    ("error", "code", "status", "words"),
    [
        (Moderated("fake", "no"), "moderated", JobStatus.MODERATED, "safety filter"),
        (
            InvalidInput("fake", "The image is too small."),
            "bad_input",
            JobStatus.FAILED,
            "too small",
        ),
        (CreditsExhausted("fake", "no credits"), "credits", JobStatus.FAILED, "not your fault"),
        (AuthError("fake", "bad key"), "auth", JobStatus.FAILED, "admin must fix the key"),
        (ProviderError("fake", "Nope."), "refused", JobStatus.FAILED, "refused this edit"),
    ],
)
async def test_terminal_errors_are_never_retried(
    harness: Harness, error: ProviderError, code: str, status: JobStatus, words: str
) -> None:
    harness.provider.default = Plan(submit_error=error)
    job_id = await _run_one(harness, "x")
    assert harness.provider.submits["x"] == 1
    failure = await _failure(harness, job_id)
    assert failure.code == code and words in failure.reason
    assert "Traceback" not in failure.reason
    job = await harness.repo.get_job(job_id)
    assert job is not None and job.status is status


async def test_credits_message_asks_an_admin(harness: Harness) -> None:
    harness.provider.default = Plan(submit_error=CreditsExhausted("fake", "x"))
    failure = await _failure(harness, await _run_one(harness, "x"))
    assert "a bot admin must top up" in failure.reason


async def test_moderation_at_poll_time_is_terminal(harness: Harness) -> None:
    harness.provider.default = Plan(sync=False, finish=Moderated("fake", "flagged"))
    job_id = await _run_one(harness, "x")
    job = await harness.repo.get_job(job_id)
    assert job is not None and job.status is JobStatus.MODERATED
    assert harness.provider.submits["x"] == 1


async def test_poll_errors_are_retried_without_resubmitting(harness: Harness) -> None:
    harness.provider.default = Plan(
        sync=False, polls=(_down(), ProviderTimeout("fake", "slow"), Pending(status="processing"))
    )
    job_id = await _run_one(harness, "x")
    job = await harness.repo.get_job(job_id)
    assert job is not None and job.status is JobStatus.DONE
    assert harness.provider.submits["x"] == 1
    assert harness.provider.polls[job.provider_handle or ""] == 4


async def test_endless_poll_errors_fail_without_resubmitting(harness: Harness) -> None:
    harness.provider.default = Plan(sync=False, polls=tuple(_down() for _ in range(20)))
    job_id = await _run_one(harness, "x", retry=JobRetryPolicy(poll_errors=3))
    job = await harness.repo.get_job(job_id)
    assert job is not None and job.status is JobStatus.FAILED
    assert job.error_code == "provider_down"
    assert harness.provider.submits["x"] == 1
    assert harness.provider.polls[job.provider_handle or ""] == 4


async def test_fallback_moves_the_job_when_the_primary_is_down(harness: Harness) -> None:
    backup = FakeProvider(capabilities("backup"), clock=harness.clock)
    harness.providers["backup"] = backup
    harness.provider.default = Plan(submit_error=_down())
    job_id = await _run_one(harness, "x", fallback_provider="backup")
    job = await harness.repo.get_job(job_id)
    assert job is not None and job.status is JobStatus.DONE and job.provider == "backup"
    assert harness.provider.submits["x"] == 3 and backup.submits["x"] == 1
    (moved,) = harness.of(job_id, "fallback")
    assert isinstance(moved, JobFallback)
    assert (moved.from_provider, moved.to_provider) == ("fake", "backup")
    assert "moved to Backup" in moved.reason
    assert harness.kinds(job_id)[-3:] == ["fallback", "started", "done"]


async def test_no_fallback_when_it_cannot_serve_the_request(harness: Harness) -> None:
    backup = FakeProvider(capabilities("backup"), clock=harness.clock)
    backup.refuse = "Backup cannot edit images."
    harness.providers["backup"] = backup
    harness.provider.default = Plan(submit_error=_down())
    job_id = await _run_one(harness, "x", fallback_provider="backup")
    assert (await _failure(harness, job_id)).code == "provider_down"
    assert backup.submits["x"] == 0


async def test_no_fallback_for_terminal_errors(harness: Harness) -> None:
    backup = FakeProvider(capabilities("backup"), clock=harness.clock)
    harness.providers["backup"] = backup
    harness.provider.default = Plan(submit_error=InvalidInput("fake", "bad"))
    job_id = await _run_one(harness, "x", fallback_provider="backup")
    assert (await _failure(harness, job_id)).code == "bad_input"
    assert backup.submits["x"] == 0


async def test_flagged_outputs_are_dropped_under_a_blocking_policy(harness: Harness) -> None:
    harness.provider.script("mixed", Plan(outputs=2, nsfw=(True, False)))
    harness.provider.script("all", Plan(outputs=1, nsfw=(True,)))
    engine = harness.engine()
    await engine.start()
    mixed = await engine.submit(edit("mixed"))
    flagged = await engine.submit(edit("all", user=2))
    await engine.run_until_idle()
    assert [i.output.index for i in harness.deliverer.delivered[mixed.id]] == [1]
    job = await harness.repo.get_job(flagged.id)
    assert job is not None and job.status is JobStatus.MODERATED
    assert flagged.id not in harness.deliverer.delivered


async def test_flagged_outputs_are_kept_as_spoilers_where_allowed(harness: Harness) -> None:
    await harness.repo.save_guild_settings(
        GuildSettings(guild_id=1, nsfw_policy=NsfwPolicy.SPOILER), now=T0
    )
    harness.provider.default = Plan(outputs=1, nsfw=(True,))
    job_id = await _run_one(harness, "x")
    (image,) = harness.deliverer.delivered[job_id]
    assert image.output.nsfw


async def test_output_that_is_not_an_image_fails_cleanly(harness: Harness) -> None:
    class Garbage:
        async def fetch(self, url: str, *, max_bytes: int | None = None) -> bytes:
            return b"<html>not an image</html>"

    harness.provider.default = Plan(url="https://cdn.fake/out.png")
    engine = harness.engine(fetcher=Garbage())
    await engine.start()
    job = await engine.submit(edit("x"))
    await engine.run_until_idle()
    failure = await _failure(harness, job.id)
    assert failure.code == "bad_output"


async def test_result_urls_are_downloaded_with_retries(harness: Harness) -> None:
    class Flaky:
        def __init__(self) -> None:
            self.calls: list[tuple[str, int | None]] = []

        async def fetch(self, url: str, *, max_bytes: int | None = None) -> bytes:
            self.calls.append((url, max_bytes))
            if len(self.calls) == 1:
                raise KontextError("connection reset")
            return png_bytes(4, 4)

    fetcher = Flaky()
    harness.provider.default = Plan(url="https://cdn.fake/out.png")
    engine = harness.engine(fetcher=fetcher)
    await engine.start()
    job = await engine.submit(edit("x"))
    await engine.run_until_idle()
    assert fetcher.calls == [("https://cdn.fake/out.png", 50 * 1024 * 1024)] * 2
    (image,) = harness.deliverer.delivered[job.id]
    assert image.output.width == 4


async def test_delivery_is_retried_then_done_once(harness: Harness) -> None:
    harness.deliverer.fail_next = 2
    job_id = await _run_one(harness, "x")
    job = await harness.repo.get_job(job_id)
    assert job is not None and job.status is JobStatus.DONE
    assert harness.deliverer.attempts == [job_id] * 3


async def test_delivery_that_keeps_failing_ends_the_job(harness: Harness) -> None:
    harness.deliverer.fail_next = 5
    job_id = await _run_one(harness, "x")
    assert (await _failure(harness, job_id)).code == "delivery_failed"


async def test_a_failing_sink_never_breaks_the_engine(harness: Harness) -> None:
    async def broken(event: JobEvent) -> None:
        raise RuntimeError("sink bug")

    engine = harness.engine()
    engine.events.add(broken)
    await engine.start()
    job = await engine.submit(edit("x"))
    await engine.run_until_idle()
    assert harness.kinds(job.id) == ["queued", "started", "done"]
