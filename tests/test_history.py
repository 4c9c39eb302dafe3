"""The edit history: chain building, the Info text, and the contact sheet (decoded and sampled)."""

from __future__ import annotations

import io
import re
import threading
from collections.abc import Sequence
from pathlib import Path

import pytest
from PIL import Image

from bot import history
from bot.discord.render import PROMPT_CHARS, escape_prompt, format_chain
from bot.history import (
    MAX_TILES,
    PLACEHOLDER_BACKGROUND,
    SHEET_BACKGROUND,
    TILE_BACKGROUND,
    ChainStep,
    HistoryTree,
    build_tree,
    contact_sheet,
    contact_sheet_sync,
    load_tree,
    sheet_layout,
    sheet_slots,
)
from bot.models import Job, JobKind, JobParams, JobStatus, NewJob, Output, OutputFormat
from tests import imagecorpus as corpus

T0 = 1_800_000_000.0
Colour = tuple[int, int, int]

# --------------------------------------------------------------------------- helpers


def make_job(
    job_id: int,
    *,
    prompt: str = "make it snowy",
    kind: JobKind = JobKind.EDIT,
    parent: int | None = None,
    status: JobStatus = JobStatus.DONE,
    seed: int | None = None,
) -> Job:
    return Job(
        id=job_id, guild_id=1, channel_id=2, thread_id=None, user_id=3, kind=kind,
        prompt=prompt, params=JobParams(seed=seed), provider="aiml", model=None,
        parent_output_id=parent, reply_to_message_id=None, status=status,
        created_at=T0 + job_id, updated_at=T0 + job_id,
    )  # fmt: skip


def make_output(output_id: int, job_id: int) -> Output:
    return Output(
        id=output_id, job_id=job_id, index=0, content_hash=f"hash{output_id}", size=1,
        format=OutputFormat.PNG, width=8, height=8, created_at=T0 + 1000 + output_id,
    )  # fmt: skip


def solid_png(colour: Colour, size: tuple[int, int] = (96, 64)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, "PNG")
    return out.getvalue()


def colours(count: int) -> list[Colour]:
    """Distinct, saturated colours, far from the sheet's greys."""
    return [(40 + (i * 53) % 200, 230 - (i * 29) % 180, 30 + (i * 7) % 200) for i in range(count)]


def steps_of(
    images: Sequence[bytes | None], prompts: Sequence[str] | None = None
) -> list[ChainStep]:
    return [
        ChainStep(
            step=i + 1,
            prompt=prompts[i] if prompts else f"edit number {i + 1}",
            job_id=100 + i,
            output_id=200 + i,
            kind=JobKind.EDIT,
            provider="aiml",
            seed=None,
            created_at=T0,
            image=data,
        )
        for i, data in enumerate(images)
    ]


def decode(data: bytes) -> Image.Image:
    img = Image.open(io.BytesIO(data))
    assert img.format == "PNG"
    img.load()
    return img.convert("RGB")


def colour_set(img: Image.Image) -> set[object]:
    found = img.getcolors(img.width * img.height)
    assert found is not None
    return {colour for _, colour in found}


def centre(box: tuple[int, int, int, int]) -> tuple[int, int]:
    return (box[0] + box[2]) // 2, (box[1] + box[3]) // 2


def near(a: object, b: Colour, tolerance: int = 3) -> bool:
    assert isinstance(a, tuple)
    return all(abs(int(x) - y) <= tolerance for x, y in zip(a, b, strict=True))


# --------------------------------------------------------------------------- the chain


def chain_with_branches() -> tuple[list[tuple[Job, Output]], dict[int, list[Job]]]:
    """root(1) → hat(2) → scarf(3): a dog edit and a failed edit of the root, a queued
    reroll of the hat's input, and an edit of the tip."""
    root, hat, scarf = (
        make_job(1, prompt="a cat", seed=7),
        make_job(2, parent=11),
        make_job(3, parent=12),
    )
    lineage = [(root, make_output(11, 1)), (hat, make_output(12, 2)), (scarf, make_output(13, 3))]
    children = {
        11: [hat, make_job(4, parent=11), make_job(5, parent=11, status=JobStatus.FAILED)],
        12: [scarf, make_job(6, kind=JobKind.REROLL, parent=12, status=JobStatus.QUEUED)],
        13: [make_job(7, parent=13), make_job(8, parent=13)],
    }
    return lineage, children


def test_build_tree_steps_and_branch_points() -> None:
    lineage, children = chain_with_branches()
    tree = build_tree(lineage, children, {"hash11": b"root bytes", "hash13": None})
    assert [s.step for s in tree.steps] == [1, 2, 3]
    assert [(s.job_id, s.output_id) for s in tree.steps] == [(1, 11), (2, 12), (3, 13)]
    assert tree.root.seed == 7 and tree.root.provider == "aiml"
    assert tree.root.created_at == T0 + 1011  # the output's time, not the job's
    assert [s.image for s in tree.steps] == [b"root bytes", None, None]
    # The failed edit made nothing; the next step of the chain is no branch of its own.
    assert tree.branch_points == {1: (4,), 2: (6,), 3: (7, 8)}
    assert tree.tip.step == 3
    assert "root bytes" not in repr(tree.root)


def test_build_tree_needs_an_output() -> None:
    with pytest.raises(ValueError, match="at least one"):
        build_tree([], {})


# --------------------------------------------------------------------------- the Info text


def test_format_chain_numbers_labels_and_branch_markers() -> None:
    lineage, children = chain_with_branches()
    lineage[2] = (lineage[2][0].model_copy(update={"kind": JobKind.REROLL}), lineage[2][1])
    text = format_chain(build_tree(lineage, children))
    assert text == (
        "1. original upload — `a cat`  ↳ 1 other branch\n"
        "2. `make it snowy`  ↳ 1 other branch\n"
        "3. reroll — `make it snowy`  ↳ 2 branches from here"
    )


def test_format_chain_labels_imagined_and_lost_roots() -> None:
    imagined = build_tree(
        [(make_job(1, kind=JobKind.IMAGINE, prompt="a fox"), make_output(1, 1))], {}
    )
    assert format_chain(imagined) == "1. imagined — `a fox`"
    orphan = build_tree([(make_job(2, parent=99), make_output(2, 2))], {})
    assert format_chain(orphan.steps).startswith("1. an earlier image (no longer kept) — ")


def test_format_chain_prompts_cannot_ping_or_break_markdown() -> None:
    hostile = "hey @everyone and @here, <@123> <@!45> <@&678> ```py\nprint(1)``` `x` **bold**"
    text = format_chain(steps_of([None, None], [hostile, "fine"]))
    assert not re.search(r"@(everyone|here)", text)
    assert not re.search(r"<@[!&]?\d+>", text)
    first = text.splitlines()[0]
    # Exactly one code span per line, so nothing in the prompt escapes it.
    assert first.count("`") == 2 and first.endswith("`")
    assert "ˋˋˋpy print(1)ˋˋˋ ˋxˋ **bold**" in first  # shown, not interpreted
    assert len(text.splitlines()) == 2  # the newline in the prompt did not add a line


def test_long_prompts_are_shortened_with_an_ellipsis() -> None:
    shown = escape_prompt("word " * 100)
    assert len(shown) == PROMPT_CHARS and shown.endswith("…")
    assert escape_prompt("   ") == ""
    assert format_chain(steps_of([None], ["   "])) == "1. original upload — (no prompt)"


def test_format_chain_elides_the_middle_to_fit() -> None:
    prompts = [f"step {i} " + "with a long description " * 6 for i in range(1, 41)]
    text = format_chain(steps_of([None] * 40, prompts), max_chars=1800)
    assert len(text) <= 1800
    lines = text.splitlines()
    assert lines[0].startswith("1. original upload — `step 1 ")
    assert lines[-1].startswith("40. `step 40 ")
    match = re.fullmatch(r"… (\d+) more steps …", lines[1])
    assert match is not None
    kept = [int(line.split(".")[0]) for line in lines[2:]]
    assert kept == list(range(41 - len(kept), 41))  # the last ones, consecutive
    assert int(match.group(1)) + len(kept) + 1 == 40  # every step shown or counted
    assert len(kept) >= 5  # it kept as many as fit, not just the tip


def test_format_chain_fits_small_limits_by_shortening_prompts() -> None:
    text = format_chain(steps_of([None, None], ["a" * 3000, "b" * 3000]), max_chars=200)
    assert len(text) <= 200
    assert [line[:3] for line in text.splitlines()] == ["1. ", "2. "]
    assert format_chain(steps_of([None] * 3), max_chars=1800).count("\n") == 2  # untouched
    assert len(format_chain(steps_of([None] * 500, ["x" * 500] * 500), max_chars=40)) <= 40
    with pytest.raises(ValueError, match="max_chars"):
        format_chain(steps_of([None]), max_chars=39)


# --------------------------------------------------------------------------- the sheet


@pytest.mark.parametrize(("count", "grid"), [(1, (1, 1)), (3, (3, 1)), (7, (4, 2)), (30, (5, 5))])
def test_contact_sheet_has_one_tile_per_step_in_order(count: int, grid: tuple[int, int]) -> None:
    palette = colours(count)
    data = contact_sheet_sync(steps_of([solid_png(c) for c in palette]))
    img = decode(data)
    layout = sheet_layout(count)
    assert (layout.columns, layout.rows) == grid
    assert img.size == (layout.width, layout.height)
    assert len(layout.slots) == min(count, MAX_TILES)
    for position, index in enumerate(layout.slots):
        box = layout.tile_box(position)
        assert box[2] - box[0] == box[3] - box[1] == 256
        assert box[2] <= img.width and box[3] <= img.height
        pixel = img.getpixel(centre(box))
        if index is None:
            assert not any(near(pixel, c, 20) for c in palette)
        else:
            assert near(pixel, palette[index]), (position, pixel, palette[index])
    for empty in range(len(layout.slots), layout.columns * layout.rows):
        assert img.getpixel(centre(layout.tile_box(empty))) == SHEET_BACKGROUND
    assert len(data) < 10 * 1024 * 1024


def test_long_chains_show_the_first_steps_a_gap_and_the_last_steps() -> None:
    assert sheet_slots(25) == tuple(range(25))
    assert sheet_slots(30) == (0, 1, None, *range(8, 30))
    assert len(sheet_slots(1000)) == MAX_TILES


def test_tiles_are_numbered_and_captioned() -> None:
    blank = steps_of([solid_png((200, 40, 40))], [" "])
    captioned = steps_of([solid_png((200, 40, 40))], ["a caption under the tile"])
    plain, text = decode(contact_sheet_sync(blank)), decode(contact_sheet_sync(captioned))
    box = sheet_layout(1).tile_box(0)
    caption = (box[0], box[3], box[2], text.height)
    assert colour_set(plain.crop(caption)) == {SHEET_BACKGROUND}
    assert len(colour_set(text.crop(caption))) > 2  # letters, antialiased
    badge = plain.crop((box[0], box[1], box[0] + 40, box[1] + 40))
    assert len(colour_set(badge)) > 2  # the number badge over the image corner


def test_expired_and_unreadable_images_get_a_placeholder() -> None:
    palette = colours(3)
    images = [solid_png(palette[0]), None, b"not an image at all"]
    img = decode(contact_sheet_sync(steps_of(images)))
    layout = sheet_layout(3)
    assert near(img.getpixel(centre(layout.tile_box(0))), palette[0])
    for position in (1, 2):
        left, top, right, bottom = layout.tile_box(position)
        assert img.getpixel(((left + right) // 2, bottom - 20)) == PLACEHOLDER_BACKGROUND
        inside = img.crop((left + 2, top + 40, right - 2, bottom - 2))
        assert len(colour_set(inside)) > 2  # the words "image expired" / "can't show"


def tile_pixels(data: bytes, size: tuple[int, int] | None = None) -> tuple[Image.Image, int, int]:
    """The sheet of one image, and the position of its tile's top-left corner."""
    img = decode(contact_sheet_sync(steps_of([data])))
    left, top, _, _ = sheet_layout(1).tile_box(0)
    return img, left, top


def test_exif_rotation_is_applied() -> None:
    # 200×100 stored; orientation 6 shows it 100×200, so the tile's left edge is background.
    upright, left, top = tile_pixels(corpus.make_jpeg(200, 100))
    rotated, _, _ = tile_pixels(corpus.make_jpeg(200, 100, orientation=6))
    edge = (left + 20, top + 128)
    assert near(upright.getpixel(edge), corpus.RED, 20)
    assert rotated.getpixel(edge) == TILE_BACKGROUND
    assert near(rotated.getpixel((left + 128, top + 128)), corpus.RED, 20)
    assert rotated.getpixel((left + 128, top + 250)) != TILE_BACKGROUND  # full height


def test_alpha_is_composited_over_the_tile_background() -> None:
    img, left, top = tile_pixels(corpus.make_rgba_png(64, 64, alpha=128))
    half = tuple(
        round(r * 128 / 255 + b * 127 / 255)
        for r, b in zip(corpus.RED, TILE_BACKGROUND, strict=True)
    )
    assert near(img.getpixel((left + 128, top + 200)), half, 2)  # type: ignore[arg-type]
    palette, left, top = tile_pixels(corpus.make_palette_png_transparent(32, 32))
    assert near(palette.getpixel((left + 64, top + 200)), corpus.RED, 2)  # opaque half
    assert palette.getpixel((left + 192, top + 200)) == TILE_BACKGROUND  # transparent half


@pytest.mark.parametrize(
    "make",
    [
        corpus.make_la_png,
        corpus.make_png_16bit_gray,
        corpus.make_cmyk_jpeg,
        corpus.make_animated_gif,
        corpus.make_gray_jpeg,
        corpus.make_webp,
        lambda: corpus.make_raw_png(4000, 3000, bit_depth=1, color_type=0),  # 12 MP, black
        lambda: solid_png((0, 160, 90), (2000, 3)),  # a sliver
    ],
)
def test_odd_images_are_drawn(make: object) -> None:
    assert callable(make)
    img, left, top = tile_pixels(make())
    column = img.crop((left + 128, top + 40, left + 129, top + 256))  # below the badge
    assert colour_set(column) - {TILE_BACKGROUND, PLACEHOLDER_BACKGROUND}


@pytest.mark.parametrize("make", [corpus.make_big_single_colour_png, corpus.make_bomb_png])
def test_images_too_large_to_decode_get_a_placeholder(make: object) -> None:
    assert callable(make)
    img, left, top = tile_pixels(make())
    assert img.getpixel((left + 128, top + 236)) == PLACEHOLDER_BACKGROUND


def test_sheet_stays_under_the_byte_limit() -> None:
    # Noise is the worst case for PNG: 25 tiles of it still fit without scaling.
    noise = steps_of([corpus.make_noise_png(300, 300, seed=i) for i in range(MAX_TILES)])
    layout = sheet_layout(MAX_TILES)
    full = contact_sheet_sync(noise)
    assert len(full) < history.MAX_SHEET_BYTES < 10 * 1024 * 1024
    assert decode(full).size == (layout.width, layout.height)
    small = contact_sheet_sync(noise, max_bytes=1024 * 1024)
    assert len(small) <= 1024 * 1024
    shrunk = decode(small)
    assert shrunk.width < layout.width and shrunk.height < layout.height  # scaled, not cropped
    assert abs(shrunk.width / shrunk.height - layout.width / layout.height) < 0.01
    with pytest.raises(ValueError, match="cannot fit"):
        contact_sheet_sync(noise, max_bytes=1000)


def test_layout_arguments_are_checked() -> None:
    assert (sheet_layout(3, columns=2).columns, sheet_layout(3, columns=2).rows) == (2, 2)
    assert sheet_layout(2, columns=5).columns == 2  # no empty columns
    assert sheet_layout(1, tile=64).width < sheet_layout(1, tile=512).width
    for bad in ({"tile": 63}, {"tile": 513}, {"columns": 0}, {"columns": 6}):
        with pytest.raises(ValueError):
            sheet_layout(3, **bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="at least one"):
        contact_sheet_sync([])


async def test_contact_sheet_runs_in_a_worker_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    threads: list[int] = []
    real = history.contact_sheet_sync

    def spy(steps: Sequence[ChainStep] | HistoryTree, **kwargs: int | None) -> bytes:
        threads.append(threading.get_ident())
        return real(steps, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(history, "contact_sheet_sync", spy)
    steps = steps_of([solid_png((10, 200, 10))])
    tree = HistoryTree(steps=tuple(steps))
    assert await contact_sheet(tree, tile=128) == real(steps, tile=128)
    assert threads and threads[0] != threading.get_ident()


# --------------------------------------------------------------------------- from storage


async def test_load_tree_from_a_real_database(tmp_path: Path) -> None:
    storage = pytest.importorskip("storage")
    if not hasattr(storage, "open_repository"):
        pytest.skip("no storage backend in this tree yet")
    repo = storage.open_repository(f"sqlite:///{tmp_path / 'kontext.db'}")
    await repo.connect()
    try:

        async def edit(parent: int | None, prompt: str, colour: Colour, keep: bool = True) -> int:
            job = await repo.enqueue(
                NewJob(guild_id=1, channel_id=2, user_id=3, kind=JobKind.EDIT, prompt=prompt,
                       provider="aiml", parent_output_id=parent),
                now=T0,
            )  # fmt: skip
            output = await repo.add_output(
                job.id, index=0, data=solid_png(colour), format=OutputFormat.PNG, width=96,
                height=64, nsfw=False, now=T0, retention_seconds=None if keep else 60.0,
            )  # fmt: skip
            return int(output.id)

        palette = colours(3)
        root = await edit(None, "a cat", palette[0])
        hat = await edit(root, "add a hat", palette[1], keep=False)
        await edit(root, "make it a dog", (1, 2, 3))
        tip = await edit(hat, "add a scarf", palette[2])
        await repo.purge_expired(now=T0 + 400 * 86_400)  # the hat's bytes expire

        tree = await load_tree(repo, tip)
        assert tree is not None
        assert [s.prompt for s in tree.steps] == ["a cat", "add a hat", "add a scarf"]
        assert list(tree.branch_points) == [1]
        assert [s.image is not None for s in tree.steps] == [True, False, True]
        sheet = decode(await contact_sheet(tree))
        layout = sheet_layout(3)
        assert near(sheet.getpixel(centre(layout.tile_box(2))), palette[2])
        assert "↳ 1 other branch" in format_chain(tree)
        assert (await load_tree(repo, tip, images=False)).tip.image is None  # type: ignore[union-attr]
        assert await load_tree(repo, 999_999) is None
    finally:
        await repo.close()
