"""The edit service without Discord: replies, remixes, Undo and remix channels over real SQLite."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from PIL import Image

from bot.access import NotAllowed, OtherServer
from bot.clock import ManualClock
from bot.creative.service import CreativeService
from bot.creative.styles import apply_style, suffix_style
from bot.discord.interactions import strip_mention
from bot.edits import EditService, ImageGone, ImageInput, Requester
from bot.errors import BadRequest, KontextError
from bot.jobs.requests import EditRequest
from bot.models import (
    GuildSettings,
    IteratePolicy,
    Job,
    JobKind,
    NewJob,
    NewReference,
    OutputFormat,
    RemixChannel,
)
from bot.providers import CAPABILITIES
from storage import open_repository
from storage.sql import Repository

GUILD, CHANNEL, ALICE, BOB = 10, 20, 30, 40


def png(colour: tuple[int, int, int] = (10, 200, 30), size: tuple[int, int] = (48, 32)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, "PNG")
    return out.getvalue()


class RecordingEngine:
    """The engine's front door: persists the job like the engine does, and keeps the request."""

    def __init__(self, repo: Repository, clock: ManualClock) -> None:
        self.repo = repo
        self.clock = clock
        self.requests: list[EditRequest] = []

    async def submit(self, request: EditRequest, *, settings: GuildSettings | None = None) -> Job:
        self.requests.append(request)
        refs = []
        for img in request.images:
            content_hash = await self.repo.put_blob(img.data, now=self.clock.now())
            refs.append(
                NewReference(source=img.source, content_hash=content_hash, output_id=img.output_id)
            )
        fields = request.model_dump(exclude={"images", "provider", "role_ids"})
        new = NewJob(**fields, provider=request.provider or "aimlapi", references=tuple(refs))
        return await self.repo.enqueue(new, now=self.clock.now())

    async def cancel(self, job_id: int, *, by_user_id: int, moderator: bool) -> Job:
        raise NotImplementedError


@pytest.fixture
async def repo(tmp_path: Path) -> AsyncIterator[Repository]:
    repository = open_repository(f"sqlite:///{tmp_path / 'kontext.db'}")
    await repository.connect()
    try:
        yield repository
    finally:
        await repository.close()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(1_800_000_000.0)


@pytest.fixture
def engine(repo: Repository, clock: ManualClock) -> RecordingEngine:
    return RecordingEngine(repo, clock)


@pytest.fixture
def service(repo: Repository, engine: RecordingEngine, clock: ManualClock) -> EditService:
    return EditService(
        repo=repo,
        engine=engine,
        capabilities=CAPABILITIES,
        default_provider="aimlapi",
        clock=clock,
        creative=CreativeService(repo, clock, catalog=CAPABILITIES, default_provider="aimlapi"),
    )


def who(user_id: int = ALICE, **overrides: object) -> Requester:
    values: dict[str, object] = {"guild_id": GUILD, "channel_id": CHANNEL, "user_id": user_id}
    values.update(overrides)
    return Requester(**values)  # type: ignore[arg-type]


def image(name: str = "extra.png", data: bytes | None = None) -> ImageInput:
    payload = data if data is not None else png((200, 0, 0))
    url = f"https://cdn.example/{name}"
    return ImageInput(url=url, filename=name, size=len(payload), content_type="image/png")


async def result(repo: Repository, clock: ManualClock, *, parent: int | None = None) -> int:
    """A finished job by Alice with one output; returns the output id."""
    job = await repo.enqueue(
        NewJob(
            guild_id=GUILD,
            channel_id=CHANNEL,
            user_id=ALICE,
            kind=JobKind.EDIT,
            prompt="a cat" if parent is None else "add a hat",
            provider="aimlapi",
            parent_output_id=parent,
        ),
        now=clock.now(),
    )
    output = await repo.add_output(
        job.id,
        index=0,
        data=png((0, 0, 200 if parent else 100)),
        format=OutputFormat.PNG,
        width=48,
        height=32,
        nsfw=False,
        now=clock.now(),
        retention_seconds=60.0,
    )
    return output.id


def test_strip_mention_removes_only_the_bots_mentions() -> None:
    assert strip_mention("<@5> make it  blue <@!5>", 5) == "make it blue"
    assert strip_mention("ask <@6> too", 5) == "ask <@6> too"
    assert strip_mention("<@5>", 5) == ""


def test_style_suffix_joins_after_a_comma_or_after_punctuation() -> None:
    assert apply_style("a cat", suffix_style("watercolor")) == "a cat, watercolor"
    assert apply_style("a cat.", suffix_style("watercolor")) == "a cat. watercolor"
    assert apply_style("a cat", None) == "a cat"
    assert apply_style("a cat", suffix_style("  ")) == "a cat"


async def test_a_reply_edits_the_kept_output_then_the_attachments(
    service: EditService, engine: RecordingEngine, repo: Repository, clock: ManualClock
) -> None:
    output_id = await result(repo, clock)
    job = await service.reply(
        who(BOB), "  make it red ", output_id, [image()], reply_to_message_id=99
    )
    request = engine.requests[-1]
    assert request.kind is JobKind.REPLY and request.prompt == "make it red"
    assert request.parent_output_id == output_id and request.reply_to_message_id == 99
    assert [img.output_id for img in request.images] == [output_id, None]
    assert request.images[0].data == png((0, 0, 100))
    assert job.parent_output_id == output_id


async def test_requester_only_policy_applies_outside_remix_channels(
    service: EditService, repo: Repository, clock: ManualClock
) -> None:
    output_id = await result(repo, clock)
    policy = GuildSettings(guild_id=GUILD, iterate_policy=IteratePolicy.REQUESTER)
    await repo.save_guild_settings(policy, now=clock.now())
    with pytest.raises(NotAllowed, match="Only <@30>"):
        await service.reply(who(BOB), "red", output_id, [], reply_to_message_id=None)
    await service.reply(who(BOB, moderator=True), "red", output_id, [], reply_to_message_id=None)
    remix = RemixChannel(guild_id=GUILD, channel_id=CHANNEL)
    job = await service.reply(who(BOB), "red", output_id, [], reply_to_message_id=None, remix=remix)
    assert job.kind is JobKind.REMIX


async def test_purged_bytes_come_from_the_fallback_or_are_refused(
    service: EditService, engine: RecordingEngine, repo: Repository, clock: ManualClock
) -> None:
    output_id = await result(repo, clock)
    await repo.purge_expired(now=clock.now() + 400 * 86_400)
    fresh = png((1, 2, 3))

    async def refetched() -> bytes | None:
        return fresh

    async def gone() -> bytes | None:
        return None

    await service.reply(who(), "red", output_id, [], reply_to_message_id=None, fallback=refetched)
    assert engine.requests[-1].images[0].data == fresh
    with pytest.raises(ImageGone, match="is gone"):
        await service.reply(who(), "red", output_id, [], reply_to_message_id=None, fallback=gone)
    with pytest.raises(ImageGone, match="no longer have"):
        await service.reply(who(), "red", 12345, [], reply_to_message_id=None)


async def test_more_images_than_the_provider_takes_are_refused(
    service: EditService, engine: RecordingEngine, repo: Repository, clock: ManualClock
) -> None:
    output_id = await result(repo, clock)
    extras = [image(f"{n}.png") for n in range(4)]
    with pytest.raises(BadRequest, match=r"at most 4 images.*you replied to \(1\) plus 4 attached"):
        await service.reply(who(), "all", output_id, extras, reply_to_message_id=None)
    await repo.save_guild_settings(
        GuildSettings(guild_id=GUILD, provider="modelslab"), now=clock.now()
    )
    with pytest.raises(BadRequest, match=r"ModelsLab takes at most 2 images.*attach at most 1"):
        await service.reply(who(), "two", output_id, extras[:2], reply_to_message_id=None)
    assert engine.requests == []


async def test_remix_appends_the_style_and_checks_the_length(
    service: EditService, engine: RecordingEngine
) -> None:
    remix = RemixChannel(guild_id=GUILD, channel_id=CHANNEL, style_suffix="oil painting")
    job = await service.remix(
        who(BOB), "a dog", [image("dog.png", png())], remix=remix, reply_to_message_id=7
    )
    assert job.kind is JobKind.REMIX and job.prompt == "a dog, oil painting"
    assert engine.requests[-1].images[0].url == "https://cdn.example/dog.png"
    with pytest.raises(KontextError, match="characters long with the style"):
        await service.remix(who(), "x" * 3995, [image()], remix=remix, reply_to_message_id=None)
    with pytest.raises(BadRequest, match="prompt is empty"):
        await service.remix(who(), "  ", [image()], remix=remix, reply_to_message_id=None)


async def test_limits_of_the_guild_apply(
    service: EditService, repo: Repository, clock: ManualClock
) -> None:
    output_id = await result(repo, clock)
    await repo.save_guild_settings(
        GuildSettings(guild_id=GUILD, allowed_channel_ids=(777,)), now=clock.now()
    )
    with pytest.raises(NotAllowed, match="not enabled in this channel"):
        await service.reply(who(), "red", output_id, [], reply_to_message_id=None)


async def test_undo_goes_back_to_the_parent(
    service: EditService, repo: Repository, clock: ManualClock
) -> None:
    root = await result(repo, clock)
    tip = await result(repo, clock, parent=root)
    tip_job = (await repo.get_output(tip)).job_id  # type: ignore[union-attr]
    target = await service.undo(who(BOB), tip_job)
    assert target.output.id == root and target.step == 1 and target.data == png((0, 0, 100))
    root_job = target.job.id
    with pytest.raises(BadRequest, match="nothing to undo"):
        await service.undo(who(), root_job)
    await service.index_result(message_id=555, channel_id=CHANNEL, output=target.output)
    ref = await service.result_of(555)
    assert ref is not None and ref.output_id == root and ref.job_id == root_job


async def test_remix_channels_need_manage_server(service: EditService) -> None:
    with pytest.raises(NotAllowed, match="Manage Server"):
        await service.add_remix_channel(who(), 50, None)
    admin = who(manage_guild=True)
    added = await service.add_remix_channel(admin, 50, "  ink  ")
    assert added.style_suffix == "ink"
    assert await service.remix_channel(51, parent_id=50) == added  # a thread of it
    assert [c.channel_id for c in await service.list_remix_channels(GUILD)] == [50]
    with pytest.raises(BadRequest, match="style suffix"):
        await service.add_remix_channel(admin, 52, "x" * 400)
    assert await service.remove_remix_channel(admin, 50)
    assert await service.remix_channel(50, parent_id=None) is None
    settings = await service.set_gallery(admin, 60)
    assert settings.gallery_channel_id == 60 and await service.gallery_of(GUILD) == 60


async def test_every_action_naming_a_job_or_output_of_another_server_is_refused(
    service: EditService, engine: RecordingEngine, repo: Repository, clock: ManualClock
) -> None:
    """The service checks the server first, whatever the front end passed along."""
    root = await result(repo, clock)
    tip = await result(repo, clock, parent=root)
    tip_job = (await repo.get_output(tip)).job_id  # type: ignore[union-attr]
    await service.index_result(
        message_id=777, channel_id=CHANNEL, output=(await repo.get_output(tip))
    )  # type: ignore[arg-type]
    stranger = who(BOB, guild_id=GUILD + 1, moderator=True, manage_guild=True)
    actions = {
        "reply": service.reply(stranger, "red", tip, [], reply_to_message_id=None),
        "reroll": service.reroll(stranger, tip_job),
        "edit": service.iterate(stranger, tip_job, "red"),
        "edit check": service.check_iterate(stranger, tip_job),
        "edit image": service.edit_message(stranger, "red", 777, _no_images),
        "info": service.info(stranger, tip_job),
        "cancel": service.cancel(stranger, tip_job),
        "delete": service.check_delete(stranger, tip_job, 777),
        "history": service.history(stranger, tip),
        "history button": service.output_of(stranger, tip_job, 777),
        "history link": service.result_output(stranger, 777),
        "undo": service.undo(stranger, tip_job),
        "share": service.shareable(GUILD + 1, 777, job_id=tip_job),
        "star": service.shareable(GUILD + 1, 777),
    }
    for name, action in actions.items():
        with pytest.raises(OtherServer, match="belongs to another server"):
            await action
        assert engine.requests == [], name
    remix = RemixChannel(guild_id=GUILD, channel_id=CHANNEL)
    with pytest.raises(BadRequest, match="not a remix channel of this server"):
        await service.remix(stranger, "x", [image()], remix=remix, reply_to_message_id=None)
    assert engine.requests == []


async def _no_images() -> list[ImageInput]:
    raise AssertionError("a result of ours is never read from Discord")
