"""A provider whose key dies mid-run is paused for everyone: jobs wait instead of failing, the
operator is told once, a probe resumes it and the waiting jobs complete."""

from __future__ import annotations

import asyncio
from pathlib import Path

from bench.fakeprovider import Plan
from bot.jobs.events import JobPaused
from bot.models import JobStatus
from bot.ops.pauses import OperatorAlert, PauseService
from bot.ops.service import UPKEEP_SECONDS
from bot.providers.base import Pending
from bot.providers.errors import AuthError
from tests.fakes import AimlApiFake, require_docs
from tests.jobs.conftest import Harness, edit, harness, repo  # noqa: F401 - fixtures
from tests.ops.conftest import PROBE, Stack, stack_for


async def test_a_revoked_key_pauses_alerts_once_and_a_probe_resumes(stack: Stack) -> None:
    engine, fake = stack.engine, stack.fake
    good_key = fake.api_key
    first = await engine.submit(edit("before"))
    await engine.run_until_idle()
    assert (await stack.repo.get_job(first.id)).status is JobStatus.DONE  # type: ignore[union-attr]

    fake.api_key = "rotated-at-the-provider"  # our key is revoked mid-run
    jobs = [await engine.submit(edit(f"edit {n}", user=100 + n)) for n in range(4)]
    await stack.until(lambda: len(stack.alerts) == 1, "the operator alert")
    await stack.until(lambda: engine.running() == 0, "the jobs that met the dead key back")

    # Paused for everyone: stored, no further submits, every job still queued.
    (pause,) = await stack.repo.provider_pauses()
    assert (pause.provider, pause.code) == ("aimlapi", "auth")
    alert = stack.alerts[0]
    assert (alert.kind, alert.provider, alert.code) == ("paused", "aimlapi", "auth")
    assert "AIMLAPI_API_KEY" in alert.message and good_key not in alert.message
    paused = [e for e in stack.events if isinstance(e, JobPaused)]
    assert all(e.operator_told and "operator has been told" in e.reason for e in paused)
    for job in jobs:
        stored = await stack.repo.get_job(job.id)
        assert stored is not None and stored.status is JobStatus.QUEUED
    submits = fake.submits
    assert 1 + 1 <= submits <= 1 + 2  # the first job, then those that met the dead key
    # Every waiting job was told: those that met the dead key when they went back to the
    # queue, those already waiting when it paused, those queued after it at once.
    assert {e.job.id for e in paused} == {j.id for j in jobs}

    # Before the probe is due nothing is tried; a probe while the key is still dead pauses
    # again without a second alert.
    ticks = stack.ops.pauses.ticks
    stack.clock.advance(PROBE - 2 * UPKEEP_SECONDS)
    await stack.until(lambda: stack.ops.pauses.ticks > ticks, "an upkeep round")
    assert fake.submits == submits
    stack.clock.advance(2 * UPKEEP_SECONDS)
    await stack.until(lambda: fake.submits == submits + 1, "the probe's trial job")
    await stack.until(
        lambda: sum(isinstance(e, JobPaused) for e in stack.events) == len(paused) + 1,
        "the trial job back",
    )
    assert stack.events[-1].kind == "paused"
    assert len(stack.alerts) == 1

    # The operator fixes the account; the next probe's job goes through and resumes it.
    fake.api_key = good_key
    stack.clock.advance(PROBE)
    await stack.until(lambda: len(stack.alerts) == 2, "the resumed notice")
    await engine.run_until_idle()

    assert [a.kind for a in stack.alerts] == ["paused", "resumed"]
    assert await stack.repo.provider_pauses() == []
    for job in jobs:
        stored = await stack.repo.get_job(job.id)
        assert stored is not None and stored.status is JobStatus.DONE
    assert set(stack.deliverer.delivered) == {first.id, *(j.id for j in jobs)}


async def test_healthz_names_the_paused_provider(stack: Stack) -> None:
    stack.fake.api_key = "rotated-at-the-provider"
    await stack.engine.submit(edit())
    await stack.until(lambda: len(stack.alerts) == 1, "the operator alert")
    healthy, body = await stack.ops.health.report()
    assert not healthy and body["down"] == ["providers"]
    assert body["providers"]["aimlapi"]["state"] == "paused"
    assert body["providers"]["aimlapi"]["code"] == "auth"

    assert await stack.ops.pauses.resume("aimlapi")  # the admin command
    assert not await stack.ops.pauses.resume("aimlapi")
    healthy, body = await stack.ops.health.report()
    assert healthy and body["providers"]["aimlapi"] == {"state": "ok"}


async def test_another_process_pause_is_followed(stack: Stack) -> None:
    await stack.repo.pause_provider("aimlapi", code="credits", detail="403", now=stack.clock.now())
    await stack.ops.pauses.tick()
    assert stack.engine.pauses.is_paused("aimlapi")
    job = await stack.engine.submit(edit())
    (told,) = [e for e in stack.events if isinstance(e, JobPaused)]  # queued, then told
    assert [e.kind for e in stack.events if e.job.id == job.id] == ["queued", "paused"]
    assert (told.job.id, told.code) == (job.id, "credits") and "out of credits" in told.reason
    ticks = stack.ops.pauses.ticks
    stack.clock.advance(UPKEEP_SECONDS)
    await stack.until(lambda: stack.ops.pauses.ticks > ticks, "an upkeep round")
    assert stack.fake.submits == 0 and not stack.alerts  # that process told the operator
    await stack.repo.resume_provider("aimlapi")
    await stack.ops.pauses.tick()
    await stack.engine.run_until_idle()
    stored = await stack.repo.get_job(job.id)
    assert stored is not None and stored.status is JobStatus.DONE


async def test_no_pause_handler_means_the_job_fails_as_before(stack: Stack) -> None:
    stack.engine.pauses.handler = None
    stack.fake.api_key = "rotated-at-the-provider"
    job = await stack.engine.submit(edit())
    await stack.engine.run_until_idle()
    stored = await stack.repo.get_job(job.id)
    assert stored is not None and stored.status is JobStatus.FAILED
    assert stored.error_code == "auth" and not stack.alerts


async def test_two_processes_pause_together_and_tell_the_operator_once(
    tmp_path: Path, db_url: str
) -> None:
    """``db_url`` is one database on each backend; each stack has its own folder."""
    async with (
        AimlApiFake(docs=require_docs()) as fake,
        stack_for(
            tmp_path / "a", fake=fake, database_url=db_url, provider_probe_seconds=PROBE
        ) as a,
        stack_for(
            tmp_path / "b", fake=fake, database_url=db_url, provider_probe_seconds=PROBE
        ) as b,
    ):
        good_key = fake.api_key
        fake.api_key = "rotated-at-the-provider"
        jobs = [await a.engine.submit(edit(f"a{n}", user=100 + n)) for n in range(3)]
        jobs += [await b.engine.submit(edit(f"b{n}", user=200 + n)) for n in range(3)]
        await a.until(lambda: len(a.alerts) + len(b.alerts) == 1, "one operator alert")
        for stack in (a, b):  # each process follows the shared pause on its next upkeep
            stack.clock.advance(UPKEEP_SECONDS)
        await a.until(
            lambda: a.engine.pauses.is_paused("aimlapi") and b.engine.pauses.is_paused("aimlapi"),
            "both processes paused",
        )
        await a.until(lambda: a.engine.running() + b.engine.running() == 0, "jobs back")
        for job in jobs:
            stored = await a.repo.get_job(job.id)
            assert stored is not None and stored.status is JobStatus.QUEUED

        fake.api_key = good_key
        for stack in (a, b):
            stack.clock.advance(PROBE)
        await a.until(
            lambda: (
                not a.engine.pauses.is_paused("aimlapi") or not b.engine.pauses.is_paused("aimlapi")
            ),
            "a probe to resume one process",
        )
        for stack in (a, b):
            stack.clock.advance(UPKEEP_SECONDS)
        await a.until(
            lambda: (
                not (a.engine.pauses.is_paused("aimlapi") or b.engine.pauses.is_paused("aimlapi"))
            ),
            "the other process to follow",
        )
        await asyncio.gather(a.engine.run_until_idle(), b.engine.run_until_idle())
        for job in jobs:
            stored = await a.repo.get_job(job.id)
            assert stored is not None and stored.status is JobStatus.DONE
        kinds = sorted(alert.kind for alert in [*a.alerts, *b.alerts])
        assert kinds == ["paused", "resumed"]
        assert await a.repo.provider_pauses() == []


async def test_a_job_already_accepted_is_polled_on_while_paused(
    harness: Harness,  # noqa: F811 - the fixture
) -> None:
    """The scriptable engine fake: the key dies while a job runs at the provider."""
    engine = harness.engine()
    pauses = PauseService(
        harness.repo, engine.pauses, {"fake": "Fake"}, clock=harness.clock, probe_seconds=PROBE
    )
    alerts: list[OperatorAlert] = []

    async def alert(item: OperatorAlert) -> None:
        alerts.append(item)

    pauses.add_alert_sink(alert)
    dead = AuthError("fake", "bad key", detail="HTTP 401")
    harness.provider.default = Plan(sync=False, polls=(dead, dead, Pending(status="processing")))
    await engine.start()
    job = await engine.submit(edit())
    await engine.run_until_idle()

    done = await harness.repo.get_job(job.id)
    assert done is not None and done.status is JobStatus.DONE
    assert [a.kind for a in alerts] == ["paused"]  # once, though two polls were refused
    assert engine.pauses.is_paused("fake")  # until a new job goes through (the probe)
    assert sum(harness.provider.submits.values()) == 1


async def test_after_a_restart_a_pause_is_probed_at_the_first_upkeep(tmp_path: Path) -> None:
    async with stack_for(tmp_path, provider_probe_seconds=PROBE) as first:
        first.fake.api_key = "rotated-at-the-provider"
        job = await first.engine.submit(edit())
        await first.until(lambda: len(first.alerts) == 1, "the operator alert")
        await first.until(lambda: first.engine.running() == 0, "the job back in the queue")
    # The operator sets a working key and restarts (a new fake answers the configured key).
    async with stack_for(tmp_path, provider_probe_seconds=PROBE) as second:
        assert second.engine.pauses.is_paused("aimlapi")
        second.clock.advance(UPKEEP_SECONDS)  # well before PROBE
        await second.until(lambda: len(second.alerts) == 1, "the resumed notice")
        await second.engine.run_until_idle()
        assert [a.kind for a in second.alerts] == ["resumed"]
        stored = await second.repo.get_job(job.id)
        assert stored is not None and stored.status is JobStatus.DONE
