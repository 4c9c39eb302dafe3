"""Batches, picks, styles and knobs end to end: /edit and /imagine with ``count``, the pick
buttons under a batch, replies naming an image, Reroll of a batch, styles and refusals."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.discord import render
from bot.models import JobKind
from tests.bot.conftest import Delivered, Harness
from tests.bot.iterating import answer_to, job_id_of, nth_result, reply
from tests.discord_fake import FakeDiscord
from tests.discord_fake.models import StoredMessage
from tests.fakes import FAKES, AimlApiFake, Outcome, docs_dir


def _labels(message: StoredMessage) -> list[str]:
    return [
        str(c.get("label"))
        for row in message.components
        for c in row.get("components", [])
        if c.get("type") == 2
    ]


@pytest.fixture(params=sorted(FAKES))
async def any_provider(
    request: pytest.FixtureRequest, fake_discord: FakeDiscord, tmp_path: Path
) -> AsyncIterator[Harness]:
    """The bot running on each provider fake in turn."""
    async with FAKES[request.param](docs=docs_dir()) as provider:
        harness = Harness(fake_discord, provider, tmp_path / "kontext.db")  # type: ignore[arg-type]
        try:
            await harness.start()
            yield harness
        finally:
            await harness.stop()
        provider.assert_clean()


async def _allow_four(h: Harness) -> None:
    """Four images at once need room for four active jobs (a batch counts once per image)."""
    await (
        await h.member("alice").run_command(
            "kontext-admin settings", in_channel="general", per_user=4
        )
    ).response()


async def test_a_batch_of_four_then_pick_three(any_provider: Harness) -> None:
    h = any_provider
    await _allow_four(h)
    done = await h.edit_done("make it blue", count=4)
    batch = await h.job(done.job_id)
    assert batch.params.num_images == 4
    assert len(done.result.attachments) == 4
    assert _labels(done.result)[:4] == ["1", "2", "3", "4"]
    assert "kx:pick3:" in str(done.result.components)

    picked = await h.member("alice").click(done.result, "3")
    answer = await picked.response()
    assert "Posted image 3" in answer.content and answer.flags & 64
    alone = await nth_result(h, done.thread_id, 2)
    assert len(alone.attachments) == 1 and "1" not in _labels(alone)
    assert h.app is not None
    pick = await h.job(job_id_of(alone))
    assert pick.kind is JobKind.PICK
    sources = {o.number: o for o in await h.app.repo.outputs_for_job(batch.id)}
    assert pick.parent_output_id == sources[3].id

    again = await (await h.member("alice").click(done.result, "3")).response()
    assert "already picked" in again.content
    assert len(h.results(done.thread_id)) == 2


async def test_a_pick_button_of_another_server_is_refused(kontext: Harness) -> None:
    done = await kontext.edit_done("make it blue", count=2)
    alien = kontext.member("alice")
    answer = await (
        await alien.forge_click(done.result, f"kx:pick1:{done.job_id + 1000}")
    ).response()
    assert "no longer exists" in answer.content or "not" in answer.content
    assert len(kontext.results(done.thread_id)) == 1


async def _batch(h: Harness) -> Delivered:
    await _allow_four(h)
    return await h.edit_done("make it blue", count=4)


async def test_a_reply_naming_an_image_edits_that_image(kontext: Harness) -> None:
    done = await _batch(kontext)
    assert kontext.app is not None
    await reply(kontext, "alice", done.result, "2: make it night")
    child = await nth_result(kontext, done.thread_id, 2)
    job = await kontext.job(job_id_of(child))
    sources = {o.number: o for o in await kontext.app.repo.outputs_for_job(done.job_id)}
    assert job.parent_output_id == sources[2].id and job.prompt == "make it night"


async def test_a_reply_to_a_batch_without_a_number_asks_which(kontext: Harness) -> None:
    done = await _batch(kontext)
    asked = await reply(kontext, "alice", done.result, "make it night")
    answer = await answer_to(kontext, asked)
    assert "4 images" in answer.content and "2: make it night" in answer.content
    assert len(kontext.results(done.thread_id)) == 1


async def test_reroll_of_a_batch_rerolls_the_batch(kontext: Harness) -> None:
    done = await _batch(kontext)
    await (await kontext.member("alice").click(done.result, "Reroll")).response()
    again = await nth_result(kontext, done.thread_id, 2)
    assert len(again.attachments) == 4
    assert (await kontext.job(job_id_of(again))).params.num_images == 4


async def test_a_preset_style_and_info_shows_where_values_came_from(kontext: Harness) -> None:
    done = await kontext.edit_done("the cat", style="watercolor", guidance=7.5)
    job = await kontext.job(done.job_id)
    assert job.params.style == "watercolor" and job.prompt != "the cat"
    assert "the cat" in job.prompt
    info = await (await kontext.member("alice").click(done.result, "Info")).response()
    assert "**Style:** watercolor (your option)" in info.content
    assert "**Guidance:** 7.5 (your option)" in info.content
    assert "**Your words:**" in info.content and "**Prompt sent:**" in info.content


async def test_an_unknown_style_and_a_too_large_count_are_refused(kontext: Harness) -> None:
    provider = kontext.provider
    assert isinstance(provider, AimlApiFake)
    _, ack = await kontext.edit("x", style="no-such-style")
    assert "no style called `no-such-style`" in ack.content
    _, ack = await kontext.edit("x", count=4)
    assert "1 to 3 images" in ack.content
    assert provider.submits == 0


async def test_knobs_are_refused_where_the_provider_lacks_them(
    fake_discord: FakeDiscord, tmp_path: Path
) -> None:
    async with FAKES["wavespeed"](docs=docs_dir()) as wavespeed:
        h = Harness(fake_discord, wavespeed, tmp_path / "kontext.db")  # type: ignore[arg-type]
        await h.start()
        try:
            _, ack = await h.edit("x", safety_tolerance=1)
            assert "safety" in ack.content.lower()
            _, ack = await h.edit("x", guidance=15.0)
            assert "guidance" in ack.content.lower() and "10" in ack.content
            _, ack = await h.edit("x", provider="aimlapi")
            assert "does not let members choose" in ack.content
            assert wavespeed.submits == 0
        finally:
            await h.stop()


async def test_the_edit_form_takes_a_count_and_a_style(kontext: Harness) -> None:
    done = await kontext.edit_done("make it blue")
    alice = kontext.member("alice")
    form = await (await alice.click(done.result, "Edit")).modal()
    labels = [c["label"] for row in form["components"] for c in row.get("components", [row])]
    assert labels == ["What should change?", "How many images?", "Style (optional)"]
    ack = await (
        await alice.submit_modal(
            {"What should change?": "a hat", "How many images?": "2", "Style (optional)": "night"}
        )
    ).response()
    assert "Queued" in ack.content, ack.content
    child = await nth_result(kontext, done.thread_id, 2)
    job = await kontext.job(job_id_of(child))
    assert job.params.num_images == 2 and job.params.style == "night"
    assert len(child.attachments) == 2

    await (await alice.click(child, "Edit")).modal()
    refused = await (
        await alice.submit_modal({"What should change?": "a hat", "How many images?": "9"})
    ).response()
    assert "number from 1 to 4" in refused.content


async def test_style_is_searched_as_you_type(kontext: Harness) -> None:
    alice = kontext.member("alice")
    handle = await alice.autocomplete("imagine", focused="style", prompt="a cat", style="water")
    choices = await handle.choices()
    assert choices and choices[0]["value"] == "watercolor"
    assert all(len(c["name"]) <= 100 for c in choices)
    everything = await (await alice.autocomplete("edit", focused="style", style="")).choices()
    assert 10 <= len(everything) <= 25


async def test_a_partly_failed_batch_says_which_images_failed(
    fake_discord: FakeDiscord, tmp_path: Path
) -> None:
    async with FAKES["wavespeed"](docs=docs_dir()) as wavespeed:
        wavespeed.script(
            "submit",
            Outcome.success(),
            Outcome.http(400, "The input could not be processed"),
            Outcome.success(),
        )
        h = Harness(fake_discord, wavespeed, tmp_path / "kontext.db")  # type: ignore[arg-type]
        await h.start()
        try:
            done = await h.edit_done("make it blue", count=3)
            assert len(done.result.attachments) == 2
            assert "Image 2 of 3 failed" in done.result.content
            assert _labels(done.result)[:2] == ["1", "3"]
            assert str(render.NOTE_BATCH) in done.result.content
        finally:
            await h.stop()
