"""Settings, remix channels, outputs and blobs, lineage, the message index, the usage ledger."""

from __future__ import annotations

import hashlib

from bot.models import (
    AspectRatio,
    GuildSettings,
    JobStatus,
    MessageKind,
    MessageRef,
    NewReference,
    NsfwPolicy,
    OutputFormat,
    ReferenceSource,
    RemixChannel,
)
from storage.sql import Repository
from tests.storage.conftest import T0, new_job

DAY = 86_400.0


async def test_guild_settings_default_then_round_trip(repo: Repository) -> None:
    assert await repo.get_guild_settings(7) == GuildSettings.defaults(7)
    settings = GuildSettings(
        guild_id=7,
        provider="wavespeed",
        model="flux-kontext-max",
        default_aspect_ratio=AspectRatio.R16_9,
        safety_tolerance=5,
        max_user_active=1,
        max_guild_running=2,
        max_guild_queue=9,
        daily_quota=0,
        nsfw_policy=NsfwPolicy.SPOILER,
        allowed_role_ids=(1_000_000_000_000_000_001, 2),
        allowed_channel_ids=(3,),
        gallery_channel_id=4,
        providers=("fal", "bfl"),
    )
    await repo.save_guild_settings(settings, now=T0)
    assert await repo.get_guild_settings(7) == settings
    changed = settings.model_copy(update={"allowed_role_ids": (), "gallery_channel_id": None})
    await repo.save_guild_settings(changed, now=T0 + 1)
    assert await repo.get_guild_settings(7) == changed


async def test_saved_running_cap_is_used_by_the_claim(repo: Repository) -> None:
    await repo.save_guild_settings(GuildSettings(guild_id=1, max_guild_running=1), now=T0)
    first = await repo.enqueue(new_job(), now=T0)
    await repo.enqueue(new_job(), now=T0)
    claimed = await repo.claim(worker_id="w", provider="aiml", now=T0, lease_seconds=9, limit=2)
    assert [j.id for j in claimed] == [first.id]


async def test_remix_channels(repo: Repository) -> None:
    await repo.add_remix_channel(RemixChannel(guild_id=1, channel_id=20), now=T0)
    await repo.add_remix_channel(
        RemixChannel(guild_id=1, channel_id=10, style_suffix="in watercolour"), now=T0
    )
    await repo.add_remix_channel(RemixChannel(guild_id=2, channel_id=30), now=T0)
    assert [c.channel_id for c in await repo.list_remix_channels(1)] == [10, 20]
    assert await repo.get_remix_channel(10) == RemixChannel(
        guild_id=1, channel_id=10, style_suffix="in watercolour"
    )
    assert await repo.remove_remix_channel(1, 10) is True
    assert await repo.remove_remix_channel(1, 10) is False
    assert await repo.remove_remix_channel(1, 30) is False  # another guild's channel
    assert await repo.get_remix_channel(10) is None


async def test_blobs_are_content_addressed(repo: Repository) -> None:
    data = b"\x89PNG fake image bytes"
    digest = await repo.put_blob(data, now=T0)
    assert digest == hashlib.sha256(data).hexdigest()
    assert await repo.put_blob(data, now=T0 + 1) == digest
    assert await repo.get_blob(digest) == data
    assert await repo.get_blob("0" * 64) is None
    assert await repo.get_blob("../../etc/passwd") is None


async def test_outputs_are_idempotent_and_record_their_message(repo: Repository) -> None:
    job = await repo.enqueue(new_job(), now=T0)
    first = await repo.add_output(
        job.id,
        index=0,
        data=b"one",
        format=OutputFormat.PNG,
        width=1024,
        height=768,
        nsfw=True,
        now=T0,
        retention_seconds=30 * DAY,
    )
    again = await repo.add_output(
        job.id,
        index=0,
        data=b"one",
        format=OutputFormat.PNG,
        width=1024,
        height=768,
        nsfw=True,
        now=T0 + 5,
        retention_seconds=30 * DAY,
    )
    assert again == first
    assert (first.size, first.nsfw, first.expires_at) == (3, True, T0 + 30 * DAY)
    await repo.set_output_message(first.id, channel_id=5, message_id=6, attachment_id=7)
    stored = await repo.get_output(first.id)
    assert stored is not None and (stored.channel_id, stored.message_id, stored.attachment_id) == (
        5,
        6,
        7,
    )
    assert await repo.outputs_for_job(job.id) == [stored]
    assert await repo.get_blob(stored.content_hash) == b"one"


async def test_purge_drops_expired_outputs_and_unreferenced_blobs(repo: Repository) -> None:
    job = await repo.enqueue(new_job(), now=T0)
    short = await repo.add_output(
        job.id, index=0, data=b"short", format=OutputFormat.PNG, width=1, height=1,
        nsfw=False, now=T0, retention_seconds=DAY,
    )  # fmt: skip
    kept = await repo.add_output(
        job.id, index=1, data=b"forever", format=OutputFormat.JPEG, width=1, height=1,
        nsfw=False, now=T0, retention_seconds=None,
    )  # fmt: skip
    loose = await repo.put_blob(b"stored but never used", now=T0)
    ref_blob = await repo.put_blob(b"reference of a queued job", now=T0)
    waiting = await repo.enqueue(
        new_job(references=(NewReference(source=ReferenceSource.UPLOAD, content_hash=ref_blob),)),
        now=T0,
    )
    assert await repo.purge_expired(now=T0 + DAY / 2) == 0  # nothing expired yet
    assert await repo.purge_expired(now=T0 + 2 * DAY) == 2  # "short" and the loose blob
    assert await repo.get_blob(short.content_hash) is None
    assert await repo.get_blob(loose) is None
    assert await repo.get_blob(kept.content_hash) == b"forever"
    assert await repo.get_blob(ref_blob) == b"reference of a queued job"
    assert await repo.get_output(short.id) is not None  # the record stays, the bytes go
    await repo.transition(waiting.id, expected=JobStatus.QUEUED, to=JobStatus.CANCELLED, now=T0)
    assert await repo.purge_expired(now=T0 + 29 * DAY) == 0  # references kept a while
    assert await repo.purge_expired(now=T0 + 31 * DAY) == 1
    assert await repo.get_blob(ref_blob) is None


async def test_lineage_and_children_over_a_branched_chain(repo: Repository) -> None:
    async def output_of(parent: int | None, prompt: str) -> tuple[int, int]:
        job = await repo.enqueue(new_job(prompt=prompt, parent_output_id=parent), now=T0)
        output = await repo.add_output(
            job.id, index=0, data=prompt.encode(), format=OutputFormat.PNG, width=8, height=8,
            nsfw=False, now=T0, retention_seconds=None,
        )  # fmt: skip
        return job.id, output.id

    root_job, root = await output_of(None, "a cat")
    hat_job, hat = await output_of(root, "add a hat")
    scarf_job, scarf = await output_of(hat, "add a scarf")
    dog_job, dog = await output_of(root, "make it a dog")
    chain = await repo.lineage(scarf)
    assert [(job.id, out.id) for job, out in chain] == [
        (root_job, root),
        (hat_job, hat),
        (scarf_job, scarf),
    ]
    assert [job.id for job, _ in await repo.lineage(dog)] == [root_job, dog_job]
    assert [job.id for job in await repo.children(root)] == [hat_job, dog_job]
    assert await repo.children(scarf) == []
    assert await repo.lineage(999_999) == []


async def test_message_index(repo: Repository) -> None:
    job = await repo.enqueue(new_job(), now=T0)
    ref = MessageRef(message_id=555, channel_id=101, job_id=job.id, kind=MessageKind.STATUS)
    await repo.index_message(ref, now=T0)
    assert await repo.lookup_message(555) == ref
    output = await repo.add_output(
        job.id, index=0, data=b"x", format=OutputFormat.PNG, width=1, height=1, nsfw=False,
        now=T0, retention_seconds=None,
    )  # fmt: skip
    result = ref.model_copy(update={"output_id": output.id, "kind": MessageKind.RESULT})
    await repo.index_message(result, now=T0 + 1)
    assert await repo.lookup_message(555) == result
    await repo.delete_message_ref(555)
    assert await repo.lookup_message(555) is None


async def test_usage_ledger_accumulates_per_user_and_day(repo: Repository) -> None:
    await repo.record_usage(guild_id=1, user_id=10, day="2027-01-01", images=1, credits=2.5)
    await repo.record_usage(guild_id=1, user_id=10, day="2027-01-01", images=2, cost=0.08)
    await repo.record_usage(guild_id=1, user_id=11, day="2027-01-02")
    await repo.record_usage(guild_id=2, user_id=10, day="2027-01-02")
    rows = await repo.usage(guild_id=1, since_day="2027-01-01")
    assert [(r.user_id, r.day, r.jobs, r.images) for r in rows] == [
        (10, "2027-01-01", 2, 3),
        (11, "2027-01-02", 1, 0),
    ]
    assert rows[0].credits == 2.5 and abs(rows[0].cost - 0.08) < 1e-9
    assert [r.user_id for r in await repo.usage(guild_id=1, since_day="2027-01-02")] == [11]
    assert await repo.usage(guild_id=1, since_day="2027-01-01", user_id=12) == []


async def test_route_reason_and_provider_backlog(repo: Repository) -> None:
    first = await repo.enqueue(
        new_job(provider="fal").model_copy(update={"route_reason": "fal.ai: soonest"}), now=T0
    )
    await repo.enqueue(new_job(provider="fal", user_id=11), now=T0)
    await repo.enqueue(new_job(provider="bfl", user_id=12), now=T0)
    assert first.route_reason == "fal.ai: soonest"
    assert await repo.provider_backlog("fal") == 2 and await repo.provider_backlog("bfl") == 1
    (claimed,) = await repo.claim(worker_id="w", provider="fal", now=T0, lease_seconds=30)
    assert await repo.provider_backlog("fal") == 2  # submitting still waits for its slot
    moved = await repo.transition(
        claimed.id,
        expected=JobStatus.SUBMITTING,
        to=JobStatus.FAILED,
        now=T0,
        route_reason="moved",
    )
    assert moved is not None and moved.route_reason == "moved"
    assert await repo.provider_backlog("fal") == 1
