"""The edit history of an output: the chain of edits that led to it, as text and as a picture.

Outputs form a tree: every job may edit an earlier output (``Job.parent_output_id``). For one
output (the *tip*) this module describes the path from the root of that tree to the tip as
:class:`ChainStep` values, notes where other edits branched off that path, and draws it as a
PNG contact sheet (:func:`contact_sheet`). Nothing here knows about Discord: the Discord edge
words the chain (``bot.discord.render.format_chain``).

Decisions worth knowing:

* A *branch* at a step is another job that edited the same output and is not the next step of
  this chain (rerolls of the next step count: they edit the same output). Jobs that failed,
  were moderated, cancelled or expired made nothing, so they are not counted.
* The contact sheet shows at most :data:`MAX_TILES` tiles: a longer chain shows its first
  :data:`HEAD_TILES` steps, one "…" tile naming how many steps are left out, and the last
  steps. A tile whose bytes are gone (retention purged them) or cannot be decoded is drawn
  as a placeholder; the sheet is still made.
* The sheet is a PNG of thumbnails, normally well under a MiB; if it ever exceeds
  ``max_bytes`` (default 8 MiB, under Discord's 10 MiB upload limit) the whole sheet is
  scaled down until it fits.
* Captions use Pillow's built-in font (Latin text; characters it lacks, such as emoji, show
  as boxes), so the bot needs no font files.
"""

from __future__ import annotations

import asyncio
import io
import logging
import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Final, TypeAlias

from PIL import ExifTags, Image, ImageDraw, ImageFont, UnidentifiedImageError
from pydantic import Field

from bot.images import MAX_IMAGE_PIXELS
from bot.models import Frozen, Job, JobKind, JobStatus, Output

if TYPE_CHECKING:
    from storage.sql import Repository

log = logging.getLogger(__name__)

# --------------------------------------------------------------------------- the chain

#: Child jobs that produced nothing, so are no branch worth mentioning.
_DEAD: Final = frozenset(
    {JobStatus.FAILED, JobStatus.MODERATED, JobStatus.CANCELLED, JobStatus.EXPIRED}
)


class ChainStep(Frozen):
    """One output on the way from the root to the tip, with the job that made it."""

    step: int = Field(ge=1)  # 1 is the root
    prompt: str
    job_id: int
    output_id: int
    kind: JobKind
    provider: str
    seed: int | None
    created_at: float  # when the output was stored (epoch seconds)
    parent_output_id: int | None = None  # set on the root only when its parent is gone
    branches: tuple[int, ...] = ()  # ids of other live jobs that edited this output
    image: bytes | None = Field(default=None, repr=False)  # None: expired or not loaded


class HistoryTree(Frozen):
    """The chain to one output (root first) and where it branches."""

    steps: tuple[ChainStep, ...] = Field(min_length=1)

    @property
    def root(self) -> ChainStep:
        return self.steps[0]

    @property
    def tip(self) -> ChainStep:
        return self.steps[-1]

    @property
    def branch_points(self) -> dict[int, tuple[int, ...]]:
        """Step number → ids of the other jobs that edited that step's output."""
        return {s.step: s.branches for s in self.steps if s.branches}


def build_tree(
    lineage: Sequence[tuple[Job, Output]],
    children: Mapping[int, Sequence[Job]],
    images: Mapping[str, bytes | None] | None = None,
) -> HistoryTree:
    """Describe a chain from ``Repository.lineage`` (root first), the ``children`` of each of
    its outputs (by output id) and the image bytes at hand (by content hash)."""
    if not lineage:
        raise ValueError("a history needs at least one output")
    images = images or {}
    steps = []
    for position, (job, output) in enumerate(lineage):
        next_job = lineage[position + 1][0].id if position + 1 < len(lineage) else None
        branches = tuple(
            child.id
            for child in children.get(output.id, ())
            if child.id != next_job and child.status not in _DEAD
        )
        steps.append(
            ChainStep(
                step=position + 1,
                prompt=job.prompt,
                job_id=job.id,
                output_id=output.id,
                kind=job.kind,
                provider=job.provider,
                seed=job.params.seed,
                created_at=output.created_at,
                parent_output_id=job.parent_output_id if position == 0 else None,
                branches=branches,
                image=images.get(output.content_hash),
            )
        )
    return HistoryTree(steps=tuple(steps))


async def load_tree(repo: Repository, output_id: int, *, images: bool = True) -> HistoryTree | None:
    """The history of ``output_id``, or ``None`` when that output is unknown.

    With ``images``, the bytes of the steps the contact sheet shows are loaded (at most
    :data:`MAX_TILES`, so a long chain does not pull every image into memory); other steps,
    and steps whose bytes expired, have ``image=None``.
    """
    lineage = await repo.lineage(output_id)
    if not lineage:
        return None
    children = {output.id: await repo.children(output.id) for _, output in lineage}
    blobs: dict[str, bytes | None] = {}
    if images:
        for index in sheet_slots(len(lineage)):
            if index is not None:
                content_hash = lineage[index][1].content_hash
                if content_hash not in blobs:
                    blobs[content_hash] = await repo.get_blob(content_hash)
    return build_tree(lineage, children, blobs)


# --------------------------------------------------------------------------- contact sheet

MAX_TILES: Final = 25
HEAD_TILES: Final = 2  # a long chain keeps its first steps, then "…", then the last ones
MAX_COLUMNS: Final = 5
MAX_SHEET_BYTES: Final = 8 * 1024 * 1024
MIN_TILE: Final = 64
MAX_TILE: Final = 512

SHEET_BACKGROUND: Final = (30, 31, 34)
TILE_BACKGROUND: Final = (64, 66, 72)  # behind thumbnails that do not fill their square
PLACEHOLDER_BACKGROUND: Final = (48, 49, 54)
_TEXT: Final = (222, 224, 228)
_MUTED: Final = (150, 153, 160)
_BADGE: Final = (88, 101, 242)
_BADGE_TEXT: Final = (255, 255, 255)
_THUMB_FORMATS: Final = ("PNG", "JPEG", "WEBP", "GIF", "BMP", "TIFF")
#: EXIF orientation → the transpose that shows the image upright.
_UPRIGHT: Final = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}

_Font: TypeAlias = ImageFont.FreeTypeFont | ImageFont.ImageFont


def sheet_slots(count: int) -> tuple[int | None, ...]:
    """Which steps (0-based) the sheet shows, in order; ``None`` marks the "…" tile."""
    if count <= MAX_TILES:
        return tuple(range(count))
    tail = MAX_TILES - HEAD_TILES - 1
    return (*range(HEAD_TILES), None, *range(count - tail, count))


class SheetLayout(Frozen):
    """Where everything goes on a sheet; :func:`sheet_layout` computes it."""

    tile: int
    columns: int
    rows: int
    margin: int
    gap: int
    caption_height: int
    font_size: int
    slots: tuple[int | None, ...]
    width: int
    height: int

    def tile_box(self, position: int) -> tuple[int, int, int, int]:
        """The square (left, top, right, bottom) of the ``position``-th tile."""
        row, column = divmod(position, self.columns)
        left = self.margin + column * (self.tile + self.gap)
        top = self.margin + row * (self.tile + self.caption_height + self.gap)
        return left, top, left + self.tile, top + self.tile


def sheet_layout(count: int, *, tile: int = 256, columns: int | None = None) -> SheetLayout:
    """The grid for a chain of ``count`` steps.

    By default the grid has as few rows of at most :data:`MAX_COLUMNS` as possible, with the
    tiles spread evenly over them (7 steps: 4 + 3, not 5 + 2).
    """
    if count < 1:
        raise ValueError("a contact sheet needs at least one step")
    if not MIN_TILE <= tile <= MAX_TILE:
        raise ValueError(f"tile must be between {MIN_TILE} and {MAX_TILE} pixels, not {tile}")
    if columns is not None and not 1 <= columns <= MAX_COLUMNS:
        raise ValueError(f"columns must be between 1 and {MAX_COLUMNS}, not {columns}")
    slots = sheet_slots(count)
    if columns is None:
        columns = math.ceil(len(slots) / math.ceil(len(slots) / MAX_COLUMNS))
    columns = min(columns, len(slots))
    rows = math.ceil(len(slots) / columns)
    font_size = max(11, tile // 16)
    caption_height = 8 + 2 * _line_height(font_size)
    margin = gap = max(8, tile // 20)
    return SheetLayout(
        tile=tile,
        columns=columns,
        rows=rows,
        margin=margin,
        gap=gap,
        caption_height=caption_height,
        font_size=font_size,
        slots=slots,
        width=2 * margin + columns * tile + (columns - 1) * gap,
        height=2 * margin + rows * (tile + caption_height) + (rows - 1) * gap,
    )


def _font(size: int) -> _Font:
    # A fresh font per sheet: FreeType faces are not safe to share between threads.
    return ImageFont.load_default(size=size)


def _line_height(size: int) -> int:
    return math.ceil(size * 1.25)


def _thumbnail(data: bytes, tile: int) -> Image.Image | None:
    """``data`` decoded, upright, and scaled to fit a ``tile`` square; ``None`` if unusable."""
    try:
        with Image.open(io.BytesIO(data), formats=_THUMB_FORMATS) as img:
            if img.width * img.height > MAX_IMAGE_PIXELS:
                log.warning("history image of %dx%d is too large to show", *img.size)
                return None
            img.draft("RGB", (tile, tile))  # JPEG: decode at a reduced scale, much faster
            img.load()
            orientation = img.getexif().get(ExifTags.Base.Orientation, 1)
            alpha = img.mode in ("RGBA", "LA", "PA") or "transparency" in img.info
            frame = img.convert("RGBA" if alpha else "RGB")
    except (
        UnidentifiedImageError,
        Image.DecompressionBombError,
        Image.DecompressionBombWarning,
        OSError,
        ValueError,
        SyntaxError,
        EOFError,
    ) as err:
        log.warning("history image could not be decoded: %s", err)
        return None
    scale = tile / max(frame.size)
    size = (max(1, round(frame.width * scale)), max(1, round(frame.height * scale)))
    frame = frame.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)
    upright = _UPRIGHT.get(orientation) if isinstance(orientation, int) else None
    return frame.transpose(upright) if upright is not None else frame


def _wrap(text: str, font: _Font, width: int, max_lines: int = 2) -> list[str]:
    """Greedy word wrap to ``width`` pixels; the last allowed line ends in "…" if cut."""
    lines: list[str] = []
    current = ""
    for word in text.split():
        candidate = f"{current} {word}" if current else word
        if font.getlength(candidate) <= width:
            current = candidate
            continue
        if current:
            lines.append(current)
        current = word
        while font.getlength(current) > width and len(current) > 1:  # an unbroken long word
            cut = len(current) - 1
            while cut > 1 and font.getlength(current[:cut]) > width:
                cut -= 1
            lines.append(current[:cut])
            current = current[cut:]
    if current:
        lines.append(current)
    if len(lines) <= max_lines:
        return lines
    last = lines[max_lines - 1]
    while last and font.getlength(last + "…") > width:
        last = last[:-1]
    return [*lines[: max_lines - 1], last.rstrip() + "…"]


def _centred_text(
    draw: ImageDraw.ImageDraw,
    box: tuple[int, int, int, int],
    lines: list[str],
    font: _Font,
    line_height: int,
    fill: tuple[int, int, int] = _MUTED,
) -> None:
    """Draw ``lines`` centred in ``box``, each line centred on its own ink."""
    left, top, right, bottom = box
    y = top + (bottom - top - line_height * len(lines)) // 2
    for line in lines:
        ink = draw.textbbox((0, 0), line, font=font)
        x = left + (right - left - (ink[2] - ink[0])) // 2 - ink[0]
        dy = (line_height - (ink[3] - ink[1])) // 2 - ink[1]
        draw.text((x, y + dy), line, font=font, fill=fill)
        y += line_height


def _draw_tile(
    sheet: Image.Image,
    draw: ImageDraw.ImageDraw,
    box: tuple[int, int, int, int],
    step: ChainStep,
    layout: SheetLayout,
    font: _Font,
) -> None:
    left, top, right, bottom = box
    inner = (left, top, right - 1, bottom - 1)  # ImageDraw boxes include their far edge
    thumb = _thumbnail(step.image, layout.tile) if step.image is not None else None
    if thumb is None:
        draw.rectangle(inner, fill=PLACEHOLDER_BACKGROUND, outline=_MUTED, width=1)
        words = ["image", "expired"] if step.image is None else ["can't show", "image"]
        _centred_text(draw, box, words, font, _line_height(layout.font_size))
    else:
        draw.rectangle(inner, fill=TILE_BACKGROUND)
        at = (left + (layout.tile - thumb.width) // 2, top + (layout.tile - thumb.height) // 2)
        sheet.paste(thumb, at, thumb if thumb.mode == "RGBA" else None)
    # The step number in a badge at the top left.
    label = str(step.step)
    pad = max(3, layout.font_size // 4)
    line_height = _line_height(layout.font_size)
    badge = (
        left + pad,
        top + pad,
        left + 3 * pad + max(int(font.getlength(label)), line_height - 2 * pad),
        top + pad + line_height + pad,
    )
    draw.rounded_rectangle(badge, radius=pad + 2, fill=_BADGE)
    _centred_text(draw, badge, [label], font, line_height, fill=_BADGE_TEXT)
    # The prompt under the tile.
    y = bottom + 4
    for line in _wrap(" ".join(step.prompt.split()), font, layout.tile):
        draw.text((left, y), line, font=font, fill=_TEXT)
        y += _line_height(layout.font_size)


def _draw_gap(
    draw: ImageDraw.ImageDraw, box: tuple[int, int, int, int], hidden: int, layout: SheetLayout
) -> None:
    """The tile standing for the steps a long chain leaves out."""
    left, top, right, bottom = box
    draw.rectangle((left, top, right - 1, bottom - 1), outline=_MUTED, width=1)
    words = ["…", f"{hidden} more {'step' if hidden == 1 else 'steps'}"]
    font = _font(layout.font_size * 2)
    _centred_text(draw, box, words, font, _line_height(layout.font_size * 2))


def contact_sheet_sync(
    steps: Sequence[ChainStep] | HistoryTree,
    *,
    tile: int = 256,
    columns: int | None = None,
    max_bytes: int = MAX_SHEET_BYTES,
) -> bytes:
    """A PNG with one captioned, numbered tile per step (see module doc for long chains)."""
    if isinstance(steps, HistoryTree):
        steps = steps.steps
    layout = sheet_layout(len(steps), tile=tile, columns=columns)
    sheet = Image.new("RGB", (layout.width, layout.height), SHEET_BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    font = _font(layout.font_size)
    hidden = len(steps) - (len(layout.slots) - 1)
    for position, index in enumerate(layout.slots):
        box = layout.tile_box(position)
        if index is None:
            _draw_gap(draw, box, hidden, layout)
        else:
            _draw_tile(sheet, draw, box, steps[index], layout, font)
    return _encode_within(sheet, max_bytes)


def _encode_within(sheet: Image.Image, max_bytes: int) -> bytes:
    """PNG bytes of ``sheet``, scaled down by quarters until they fit ``max_bytes``."""
    frame = sheet
    while True:
        out = io.BytesIO()
        frame.save(out, "PNG", optimize=False)
        data = out.getvalue()
        if len(data) <= max_bytes:
            return data
        size = (round(frame.width * 0.75), round(frame.height * 0.75))
        if min(size) < MIN_TILE:
            raise ValueError(f"cannot fit a contact sheet into {max_bytes} bytes")
        log.info("contact sheet of %d bytes is too large; scaling it down", len(data))
        frame = sheet.resize(size, Image.Resampling.LANCZOS)


async def contact_sheet(
    steps: Sequence[ChainStep] | HistoryTree,
    *,
    tile: int = 256,
    columns: int | None = None,
    max_bytes: int = MAX_SHEET_BYTES,
) -> bytes:
    """:func:`contact_sheet_sync` in a worker thread (decoding and drawing take a while)."""
    return await asyncio.to_thread(
        contact_sheet_sync, steps, tile=tile, columns=columns, max_bytes=max_bytes
    )
