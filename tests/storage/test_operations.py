"""Storage for operating the bot, on both backends: pauses, metrics numbers, retention,
erasure of a member's data and of a server's data."""

from __future__ import annotations

from bot.models import JobStatus, NewReference, OutputFormat, ReferenceSource
from storage.sql import Repository
from tests.storage.conftest import T0, new_job

DAY = 86_400.0


async def _finished(repo: Repository, guild: int, user: int, image: bytes, *, ref: bytes) -> int:
    """A done job with one reference and one output; returns its id."""
    ref_hash = await repo.put_blob(ref, now=T0)
    job = await repo.enqueue(
        new_job(
            guild,
            user,
            references=(NewReference(source=ReferenceSource.ATTACHMENT, content_hash=ref_hash),),
        ),
        now=T0,
    )
    (claimed,) = await repo.claim(worker_id="w", provider="aiml", now=T0, lease_seconds=30)
    assert claimed.id == job.id
    await repo.add_output(
        job.id,
        index=0,
        data=image,
        format=OutputFormat.PNG,
        width=1,
        height=1,
        nsfw=False,
        now=T0,
        retention_seconds=None,
    )
    done = await repo.transition(
        job.id, expected=JobStatus.SUBMITTING, to=JobStatus.DONE, now=T0 + 5, credits=2.5
    )
    assert done is not None
    return job.id


async def test_a_provider_is_paused_once_and_resumed(repo: Repository) -> None:
    assert await repo.pause_provider("aiml", code="auth", detail="401", now=T0)
    assert not await repo.pause_provider("aiml", code="credits", detail=None, now=T0 + 1)
    (pause,) = await repo.provider_pauses()
    assert (pause.provider, pause.code, pause.detail, pause.paused_at) == (
        "aiml",
        "auth",
        "401",
        T0,
    )
    assert await repo.resume_provider("aiml")
    assert not await repo.resume_provider("aiml")
    assert await repo.provider_pauses() == []


async def test_queue_depth_and_spend_per_provider(repo: Repository) -> None:
    await _finished(repo, 1, 10, b"out", ref=b"ref")
    await repo.enqueue(new_job(1, 11), now=T0)
    await repo.enqueue(new_job(2, 12, provider="wave"), now=T0)
    await repo.enqueue(new_job(2, 13, provider="wave"), now=T0)
    assert await repo.queue_depths() == {"aiml": 1, "wave": 2}
    assert await repo.spend_by_provider() == {"aiml": (2.5, 0.0)}


async def test_retention_erases_old_prompts_and_images(repo: Repository) -> None:
    old = await _finished(repo, 1, 10, b"old output", ref=b"old reference")
    (old_output,) = await repo.outputs_for_job(old)
    jobs, outputs = await repo.retire_before(cutoff=T0 + 10, now=T0 + 40 * DAY)
    assert (jobs, outputs) == (1, 1)
    assert (await repo.retire_before(cutoff=T0 + 10, now=T0 + 40 * DAY)) == (0, 0)
    job = await repo.get_job(old)
    assert job is not None and job.prompt == "" and job.result_json is None
    purged = await repo.purge_expired(now=T0 + 40 * DAY, reference_retention_seconds=30 * DAY)
    assert purged == 2
    assert await repo.get_blob(old_output.content_hash) is None


async def test_purge_keeps_references_as_long_as_asked(repo: Repository) -> None:
    job_id = await _finished(repo, 1, 10, b"kept output", ref=b"kept reference")
    (ref,) = await repo.get_references(job_id)
    assert await repo.purge_expired(now=T0 + 40 * DAY, reference_retention_seconds=90 * DAY) == 0
    assert await repo.get_blob(ref.content_hash) == b"kept reference"


async def test_forget_a_member_keeps_what_others_still_use(repo: Repository) -> None:
    mine = await _finished(repo, 1, 10, b"my output", ref=b"shared picture")
    theirs = await _finished(repo, 1, 20, b"their output", ref=b"shared picture")
    elsewhere = await _finished(repo, 2, 10, b"my output elsewhere", ref=b"other picture")
    running = await repo.enqueue(new_job(1, 10), now=T0)
    (my_output,) = await repo.outputs_for_job(mine)

    erased = await repo.erase_user(10, guild_id=1, now=T0 + 60)

    assert (erased.jobs, erased.images, erased.still_running) == (1, 1, 1)
    assert await repo.get_blob(my_output.content_hash) is None
    (shared,) = await repo.get_references(theirs)
    assert await repo.get_blob(shared.content_hash) == b"shared picture"
    job = await repo.get_job(mine)
    assert job is not None and job.prompt == ""
    for kept in (theirs, elsewhere, running.id):
        job = await repo.get_job(kept)
        assert job is not None and job.prompt == "make it blue"
    everywhere = await repo.erase_user(10, guild_id=None, now=T0 + 60)
    assert (everywhere.jobs, everywhere.images) == (2, 2)


async def test_a_departed_server_is_deleted_whole(repo: Repository) -> None:
    gone = await _finished(repo, 5, 10, b"gone output", ref=b"shared picture")
    await _finished(repo, 6, 10, b"staying output", ref=b"shared picture")
    (gone_output,) = await repo.outputs_for_job(gone)
    await repo.mark_guild_departed(5, now=T0)
    await repo.mark_guild_departed(5, now=T0 + 100)  # the first time counts
    await repo.mark_guild_departed(6, now=T0)
    await repo.mark_guild_present(6)
    assert await repo.departed_guilds(left_before=T0 + 1) == [5]
    assert await repo.departed_guilds(left_before=T0) == []
    assert await repo.guilds_with_data() == [5, 6]

    busy = await repo.enqueue(new_job(5, 11), now=T0)
    assert await repo.delete_guild_data(5, now=T0 + 1) is None  # unfinished work: nothing goes
    await repo.transition(busy.id, expected=JobStatus.QUEUED, to=JobStatus.CANCELLED, now=T0)

    erased = await repo.delete_guild_data(5, now=T0 + 1)

    assert erased is not None and (erased.jobs, erased.images) == (2, 1)
    assert await repo.get_job(gone) is None
    assert await repo.get_blob(gone_output.content_hash) is None
    assert await repo.guilds_with_data() == [6]
    assert await repo.departed_guilds(left_before=T0 + 10**6) == []
    assert await repo.count_queued() == 0


async def test_the_registered_commands_hash_is_kept_per_scope(repo: Repository) -> None:
    assert await repo.command_digest("1:global") is None
    await repo.set_command_digest("1:global", "aaa", now=T0)
    await repo.set_command_digest("1:guild:5", "bbb", now=T0)
    await repo.set_command_digest("1:global", "ccc", now=T0 + 1)
    assert await repo.command_digest("1:global") == "ccc"
    assert await repo.command_digest("1:guild:5") == "bbb"
    assert await repo.command_digest("2:global") is None
