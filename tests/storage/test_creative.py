"""Batches, styles, preferences, creative settings and picks in storage (both backends)."""

from __future__ import annotations

import pytest

from bot.creative_models import (
    BatchItemStatus,
    BlockRule,
    CreativeSettings,
    MemberPrefs,
    Tier,
)
from bot.models import AspectRatio, JobKind, JobParams, JobStatus, NewJob, OutputFormat
from storage.base import EnqueueLimits, LimitExceeded, LimitKind
from storage.sql import Repository
from tests.storage.conftest import T0, new_job


def batch(count: int, user_id: int = 10, guild_id: int = 1) -> NewJob:
    return new_job(guild_id=guild_id, user_id=user_id).model_copy(
        update={"params": JobParams(num_images=count)}
    )


@pytest.mark.parametrize("with_reference", [False, True])
async def test_a_batch_counts_its_size_against_the_active_limit(
    repo: Repository, with_reference: bool
) -> None:
    refs = ()
    if with_reference:  # SQLite takes another path for jobs with references
        from bot.models import NewReference, ReferenceSource

        blob = await repo.put_blob(b"ref", now=T0)
        refs = (NewReference(source=ReferenceSource.ATTACHMENT, content_hash=blob),)
    limits = EnqueueLimits(max_user_active=4)
    first = await repo.enqueue(
        batch(3).model_copy(update={"references": refs}), now=T0, limits=limits
    )
    assert first.image_count == 3
    with pytest.raises(LimitExceeded) as refused:
        await repo.enqueue(batch(2).model_copy(update={"references": refs}), now=T0, limits=limits)
    assert refused.value.limit is LimitKind.USER_ACTIVE
    assert (refused.value.current, refused.value.maximum, refused.value.requested) == (3, 4, 2)
    one = await repo.enqueue(
        new_job().model_copy(update={"references": refs}), now=T0, limits=limits
    )
    assert one.image_count == 1


async def test_a_batch_counts_its_size_against_the_daily_quota(repo: Repository) -> None:
    limits = EnqueueLimits(daily_quota=5)
    await repo.enqueue(batch(4), now=T0, limits=limits)
    with pytest.raises(LimitExceeded) as refused:
        await repo.enqueue(batch(2), now=T0 + 1, limits=limits)
    assert refused.value.limit is LimitKind.DAILY_QUOTA and refused.value.current == 4
    await repo.enqueue(batch(1), now=T0 + 2, limits=limits)


async def test_batch_items_are_created_once_and_keep_their_handles(repo: Repository) -> None:
    job = await repo.enqueue(batch(3), now=T0)
    items = await repo.init_batch_items(job.id, [11, 12, 13], now=T0)
    assert [(i.index, i.seed, i.status) for i in items] == [
        (0, 11, BatchItemStatus.PENDING),
        (1, 12, BatchItemStatus.PENDING),
        (2, 13, BatchItemStatus.PENDING),
    ]
    await repo.update_batch_item(
        job.id, 1, now=T0, status=BatchItemStatus.RUNNING, provider_handle="h-2"
    )
    again = await repo.init_batch_items(job.id, [91, 92, 93], now=T0 + 5)
    assert [i.seed for i in again] == [11, 12, 13]
    assert again[1].provider_handle == "h-2" and again[1].status is BatchItemStatus.RUNNING
    failed = await repo.update_batch_item(
        job.id, 2, now=T0, status=BatchItemStatus.FAILED, error_code="moderated", error_message="no"
    )
    assert failed is not None and failed.error_message == "no"
    with pytest.raises(TypeError):
        await repo.update_batch_item(job.id, 0, now=T0, job_id=5)


async def test_server_styles_add_remove_list(repo: Repository) -> None:
    assert await repo.add_guild_style(1, "neon", "Make it neon.", created_by=7, now=T0)
    assert not await repo.add_guild_style(1, "neon", "Other.", created_by=7, now=T0)
    assert await repo.add_guild_style(1, "chalk", "Chalk drawing.", created_by=7, now=T0)
    assert await repo.add_guild_style(2, "neon", "Guild two.", created_by=8, now=T0)
    styles = await repo.list_guild_styles(1)
    assert [(s.name, s.prompt) for s in styles] == [
        ("chalk", "Chalk drawing."),
        ("neon", "Make it neon."),
    ]
    assert await repo.remove_guild_style(1, "neon")
    assert not await repo.remove_guild_style(1, "neon")
    assert [s.name for s in await repo.list_guild_styles(1)] == ["chalk"]


async def test_member_prefs_round_trip_and_clear(repo: Repository) -> None:
    assert await repo.get_member_prefs(1, 10) == MemberPrefs()
    prefs = MemberPrefs(aspect_ratio=AspectRatio.R16_9, count=3, style="night", guidance=4.5)
    await repo.save_member_prefs(1, 10, prefs, now=T0)
    assert await repo.get_member_prefs(1, 10) == prefs
    assert await repo.get_member_prefs(2, 10) == MemberPrefs()
    await repo.save_member_prefs(1, 10, MemberPrefs(), now=T0)
    assert await repo.get_member_prefs(1, 10) == MemberPrefs()


async def test_creative_settings_round_trip(repo: Repository) -> None:
    assert await repo.get_creative_settings(5) == CreativeSettings.defaults(5)
    settings = CreativeSettings(
        guild_id=5,
        default_count=2,
        max_count=3,
        tiers=(Tier(role_id=99, daily_quota=0, max_user_active=6),),
        blocklist=(BlockRule(pattern="forbidden"), BlockRule(pattern=r"b[a@]d", regex=True)),
    )
    await repo.save_creative_settings(settings, now=T0)
    assert await repo.get_creative_settings(5) == settings


async def test_a_pick_is_a_finished_child_sharing_the_bytes(repo: Repository) -> None:
    job = await repo.enqueue(batch(2), now=T0)
    outputs = [
        await repo.add_output(
            job.id,
            index=i,
            data=bytes([i]) * 10,
            format=OutputFormat.PNG,
            width=4,
            height=4,
            nsfw=False,
            now=T0,
            retention_seconds=100.0,
        )
        for i in range(2)
    ]
    source = outputs[1]
    pick = NewJob(
        guild_id=job.guild_id,
        channel_id=job.channel_id,
        user_id=10,
        kind=JobKind.PICK,
        prompt=job.prompt,
        provider=job.provider,
        parent_output_id=source.id,
    )
    picked, output, created = await repo.record_pick(source, pick, now=T0 + 3)
    assert created and picked.status is JobStatus.DONE and picked.image_count == 0
    assert picked.finished_at == T0 + 3
    again = await repo.record_pick(source, pick.model_copy(update={"user_id": 11}), now=T0 + 4)
    assert again == (picked, output, False)
    assert output.content_hash == source.content_hash and output.number == 1
    assert [j.id for j in await repo.children(source.id)] == [picked.id]
    chain = await repo.lineage(output.id)
    assert [(j.id, o.id) for j, o in chain] == [(job.id, source.id), (picked.id, output.id)]
    assert await repo.get_blob(output.content_hash) == bytes([1]) * 10
    # A pick is not queued work and does not count against the quota.
    assert await repo.count_queued() == 1
    await repo.enqueue(batch(3), now=T0, limits=EnqueueLimits(daily_quota=5))


async def test_racing_picks_of_one_image_make_one_pick(repo: Repository) -> None:
    import asyncio

    job = await repo.enqueue(batch(1), now=T0)
    source = await repo.add_output(
        job.id,
        index=0,
        data=b"one",
        format=OutputFormat.PNG,
        width=1,
        height=1,
        nsfw=False,
        now=T0,
        retention_seconds=None,
    )
    picks = [
        NewJob(
            guild_id=1,
            channel_id=2,
            user_id=user,
            kind=JobKind.PICK,
            prompt="p",
            provider="aiml",
            parent_output_id=source.id,
        )
        for user in (10, 11, 12)
    ]
    results = await asyncio.gather(*(repo.record_pick(source, p, now=T0) for p in picks))
    assert sorted(created for *_, created in results) == [False, False, True]
    assert len({made.id for made, *_ in results}) == 1
