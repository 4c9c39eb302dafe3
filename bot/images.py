"""Reference image validation and normalisation, and re-encoding outputs to fit upload limits.

Every image a user hands us is judged by its content (never its name or declared type) before
anything is queued: it must decode completely, stay within a byte and pixel budget, and come
out as a plain RGB/RGBA PNG, JPEG or WebP that every provider accepts.

Decisions worth knowing:

* Accepted inputs are PNG (APNG: first frame), JPEG (phone MPO files: first image), WebP
  (animated: first frame) and GIF (first frame). BMP and TIFF are accepted too and re-encoded,
  because scans and old screenshots arrive that way; every other format Pillow knows is
  refused, which keeps its rarer (and less audited) decoders out of reach of user bytes.
* Decompression bombs are refused from the header alone: the size is read by a lazy
  :func:`PIL.Image.open` and compared with ``max_pixels`` before any pixel is decoded.
  Pillow's own bomb check is turned into an error (never a warning) while the header is read.
* Truncated files are refused: the first frame is always fully decoded, and
  ``ImageFile.LOAD_TRUNCATED_IMAGES`` stays off.
* Bytes are kept untouched when they already are a plain 8-bit RGB/RGBA PNG, RGB JPEG or
  RGB/RGBA WebP with one frame, no downscale to do and no metadata beyond what decoding
  needs (JFIF/Adobe markers, an ICC profile, gamma, density); re-encoding would only lose
  quality. Otherwise the image is re-encoded (EXIF orientation applied first) without
  metadata: JPEG quality 95 for lossy sources (JPEG, lossy WebP) without alpha, PNG for
  everything else.
* Privacy over fidelity: EXIF (GPS, camera serials), XMP, IPTC, comments and text chunks
  never reach a provider or storage. A phone photo therefore costs one JPEG generation at
  quality 95, which is not visible; lossless sources stay lossless.
"""

from __future__ import annotations

import asyncio
import codecs
import hashlib
import io
import logging
import re
import threading
import warnings
from typing import Final

from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError
from pydantic import Field

from bot.errors import ReasonedError
from bot.i18n import Text, t
from bot.models import Frozen
from bot.providers.base import ReferenceImage

log = logging.getLogger(__name__)

MAX_IMAGE_BYTES: Final = 25 * 1024 * 1024
MAX_IMAGE_PIXELS: Final = 40_000_000

#: Formats Image.open may identify (Pillow's names; "JPEG" also yields MPO). Others are refused.
_OPEN_FORMATS: Final = ("PNG", "JPEG", "WEBP", "GIF", "BMP", "TIFF")
#: Formats whose bytes may be passed through untouched, with their MIME types.
_PASS_THROUGH: Final = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp"}
_PLAIN_MODES: Final = {"PNG": ("RGB", "RGBA"), "JPEG": ("RGB",), "WEBP": ("RGB", "RGBA")}
_JPEG_QUALITY: Final = 95
#: ``Image.info`` keys that describe how to decode or display the pixels, not who made them
#: or where: anything else (exif, xmp, comment, photoshop, PNG text chunks...) is metadata.
_TECHNICAL_INFO: Final = frozenset(
    {
        "adobe",
        "adobe_transform",
        "aspect",
        "background",
        "chromaticity",
        "dpi",
        "duration",
        "gamma",
        "icc_profile",
        "interlace",
        "jfif",
        "jfif_density",
        "jfif_unit",
        "jfif_version",
        "loop",
        "progression",
        "progressive",
        "srgb",
        "timestamp",
    }
)
#: JPEG application segments that carry decoding data: JFIF, the ICC profile, Adobe colour.
_TECHNICAL_JPEG_SEGMENTS: Final = frozenset({"APP0", "APP2", "APP14"})
# Reading a header runs Pillow's bomb check, which warns (or raises) through the process-wide
# warnings filters. ``warnings.catch_warnings`` is not thread-safe, so header reads (cheap)
# take turns; the decoding itself runs outside the lock.
_open_lock = threading.Lock()
_BOMB_PIXELS = re.compile(r"\((\d+) pixels\)")


class ImageRejected(ReasonedError, code="bad_image"):
    """An image we will not use (``reason``: why, such as ``"truncated"``)."""


class PreparedImage(Frozen):
    """A validated image ready to send to a provider (and to store by ``content_hash``)."""

    data: bytes = Field(repr=False)
    mime: str
    width: int
    height: int
    content_hash: str  # sha256 hex of ``data``
    reencoded: bool


# --------------------------------------------------------------------------- messages


def _mib(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MiB"


def image_too_large(size: int, max_bytes: int) -> ImageRejected:
    return ImageRejected(
        "too_large",
        t("errors.image.too_large", size=_mib(size), limit=_mib(max_bytes)),
    )


def _too_many_pixels(pixels: int, max_pixels: int) -> ImageRejected:
    if pixels <= 0:
        return ImageRejected(
            "too_many_pixels",
            t("errors.image.too_many_pixels", limit=f"{max_pixels / 1_000_000:g}"),
        )
    return ImageRejected(
        "too_many_pixels",
        t(
            "errors.image.megapixels",
            megapixels=f"{pixels / 1_000_000:.1f}",
            limit=f"{max_pixels / 1_000_000:g}",
        ),
    )


def _describe_non_image(data: bytes) -> Text:
    """A guess at what a non-image file is, so the refusal can name it."""
    head = data[:512]
    stripped = head.lstrip().lower()
    if head.startswith(b"%PDF"):
        return t("errors.image.kind.pdf")
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in (b"heic", b"heix", b"mif1", b"msf1", b"hevc"):
            return t("errors.image.kind.heic")
        if brand in (b"avif", b"avis"):
            return t("errors.image.kind.avif")
        return t("errors.image.kind.video")
    if stripped.startswith((b"<svg", b"<?xml")) and b"<svg" in stripped:
        return t("errors.image.kind.svg")
    if stripped.startswith((b"<!doctype html", b"<html")):
        return t("errors.image.kind.html")
    if head.startswith(b"PK\x03\x04"):
        return t("errors.image.kind.zip")
    try:  # incremental: a character cut at the end of ``head`` is not an error
        text = codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError:
        text = "\x00"
    if text and all(ch.isprintable() or ch in "\t\r\n" for ch in text):
        return t("errors.image.kind.text")
    return t("errors.image.kind.unknown")


# --------------------------------------------------------------------------- opening


def _open_lazy(data: bytes, max_pixels: int = MAX_IMAGE_PIXELS) -> Image.Image:
    """Read the header only; refuse empty input, non-images and oversized headers."""
    if not data:
        raise ImageRejected("empty", t("errors.image.empty"))
    try:
        with _open_lock, warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            return Image.open(io.BytesIO(data), formats=_OPEN_FORMATS)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        match = _BOMB_PIXELS.search(str(err))
        pixels = int(match.group(1)) if match else 0
        raise _too_many_pixels(pixels, max_pixels) from err
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as err:
        if _starts_like_image(data):
            # It starts like an image we read, so it was cut short or damaged.
            raise _decode_failure(err, cut_short=isinstance(err, UnidentifiedImageError)) from err
        what = _describe_non_image(data)
        raise ImageRejected("not_an_image", t("errors.image.not_an_image", what=what)) from err


#: How the accepted formats begin (TIFF: either byte order; WebP is checked separately).
_SIGNATURES: Final = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF8", b"BM", b"II*\x00", b"MM\x00*")


def _starts_like_image(data: bytes) -> bool:
    return data.startswith(_SIGNATURES) or (data[:4] == b"RIFF" and data[8:12] == b"WEBP")


def _decode_failure(err: BaseException, *, cut_short: bool = False) -> ImageRejected:
    if cut_short or isinstance(err, EOFError) or "truncated" in str(err).lower():
        return ImageRejected(
            "truncated",
            t("errors.image.truncated"),
        )
    return ImageRejected("corrupt", t("errors.image.corrupt"))


def _load_first_frame(img: Image.Image) -> None:
    """Decode the first frame completely, so truncated or corrupt files are refused."""
    try:
        img.seek(0)
        img.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        raise ImageRejected("too_many_pixels", t("errors.image.unpacks_too_large")) from err
    except (OSError, SyntaxError, ValueError, EOFError, IndexError) as err:
        raise _decode_failure(err) from err


def _orientation(img: Image.Image) -> int:
    try:
        value = img.getexif().get(ExifTags.Base.Orientation, 1)
    except (OSError, ValueError, SyntaxError, KeyError, TypeError):
        return 1  # unreadable EXIF: nothing to rotate by
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def _has_metadata(img: Image.Image) -> bool:
    """Whether the file carries anything beyond its pixels' decoding data (see above)."""
    if any(key not in _TECHNICAL_INFO for key in img.info):
        return True
    segments = getattr(img, "applist", ())
    return any(marker not in _TECHNICAL_JPEG_SEGMENTS for marker, _ in segments)


def _frame_count(img: Image.Image) -> int:
    frames = getattr(img, "n_frames", 1)
    return frames if isinstance(frames, int) else 1


def _png_bit_depth(data: bytes) -> int:
    """The IHDR bit depth (Pillow reports 16-bit RGB PNGs as plain ``RGB``)."""
    return data[24] if data[12:16] == b"IHDR" and len(data) > 24 else 8


def _webp_is_lossy(data: bytes) -> bool:
    """True when the RIFF container holds a lossy ``VP8 `` bitstream."""
    pos = 12
    while pos + 8 <= len(data):
        kind = data[pos : pos + 4]
        if kind == b"VP8 ":
            return True
        if kind == b"VP8L":
            return False
        size = int.from_bytes(data[pos + 4 : pos + 8], "little")
        pos += 8 + size + (size & 1)
    return False


# --------------------------------------------------------------------------- conversion


def _has_alpha(img: Image.Image) -> bool:
    return img.mode in ("RGBA", "LA", "PA", "La", "RGBa") or "transparency" in img.info


def _normalise_mode(img: Image.Image) -> Image.Image:
    """Convert any mode to RGB or RGBA (alpha kept only where the source has it)."""
    try:
        return _convert(img)
    except (ValueError, OSError) as err:  # e.g. a LAB TIFF Pillow cannot convert
        raise ImageRejected(
            "unsupported",
            t("errors.image.colours", mode=img.mode),
        ) from err


def _convert(img: Image.Image) -> Image.Image:
    if img.mode.startswith("I;16") or img.mode == "I":
        # 16-bit samples: Pillow's direct conversion clips at 255, so scale to 8 bits first.
        img = img.convert("I").point(lambda v: v * (1 / 257)).convert("L")
    elif img.mode == "F":
        img = img.convert("L")
    target = "RGBA" if _has_alpha(img) else "RGB"
    return img if img.mode == target else img.convert(target)


def _fit_side(width: int, height: int, max_side: int) -> tuple[int, int]:
    scale = max_side / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def _encode(
    img: Image.Image, fmt: str, *, quality: int = _JPEG_QUALITY, optimize: bool = False
) -> bytes:
    """Encode without metadata, except an RGB colour profile (wide-gamut photos need it)."""
    out = io.BytesIO()
    params: dict[str, object] = {"optimize": optimize}
    icc = img.info.get("icc_profile")
    if isinstance(icc, bytes) and icc[16:20] == b"RGB ":  # the profile's colour space field
        params["icc_profile"] = icc
    if fmt == "JPEG":
        # Pillow copies a decoded JPEG's comment into the new file unless told otherwise.
        img.convert("RGB").save(out, "JPEG", quality=quality, comment=b"", **params)
    else:
        img.save(out, "PNG", **params)
    return out.getvalue()


# --------------------------------------------------------------------------- public API


def probe_sync(data: bytes) -> tuple[str, int, int]:
    """The format (lower case, e.g. ``"png"``) and size from the header, without decoding."""
    with _open_lazy(data) as img:
        fmt = (img.format or "unknown").lower()
        return fmt, img.width, img.height


async def probe(data: bytes) -> tuple[str, int, int]:
    return await asyncio.to_thread(probe_sync, data)


def prepare_image_sync(
    data: bytes,
    *,
    max_bytes: int = MAX_IMAGE_BYTES,
    max_pixels: int = MAX_IMAGE_PIXELS,
    max_side: int | None = None,
) -> PreparedImage:
    """Validate ``data`` and return it as a plain image a provider accepts (see module doc)."""
    if max_side is not None and max_side < 1:
        raise ValueError(f"max_side must be at least 1, not {max_side}")
    if len(data) > max_bytes:
        raise image_too_large(len(data), max_bytes)
    with _open_lazy(data, max_pixels) as img:
        fmt = img.format or ""
        width, height = img.size
        if width * height > max_pixels:
            raise _too_many_pixels(width * height, max_pixels)
        _load_first_frame(img)
        orientation = _orientation(img)
        needs_resize = max_side is not None and max(width, height) > max_side
        plain = (
            fmt in _PASS_THROUGH
            and img.mode in _PLAIN_MODES[fmt]
            and "transparency" not in img.info
            and _frame_count(img) == 1
            and orientation == 1
            and not _has_metadata(img)
            and not needs_resize
            and (fmt != "PNG" or _png_bit_depth(data) == 8)
        )
        if plain:
            return PreparedImage(
                data=data,
                mime=_PASS_THROUGH[fmt],
                width=width,
                height=height,
                content_hash=hashlib.sha256(data).hexdigest(),
                reencoded=False,
            )
        frame: Image.Image = img.copy() if orientation == 1 else ImageOps.exif_transpose(img)

    frame = _normalise_mode(frame)
    if max_side is not None and max(frame.size) > max_side:
        frame = frame.resize(_fit_side(*frame.size, max_side), Image.Resampling.LANCZOS)
    lossy = fmt in ("JPEG", "MPO") or (fmt == "WEBP" and _webp_is_lossy(data))
    out_fmt = "JPEG" if lossy and frame.mode == "RGB" else "PNG"
    encoded = _encode(frame, out_fmt)
    frame_size = frame.size
    if len(encoded) > max_bytes:
        encoded, ext, frame_size = _shrink(frame, max_bytes)
        out_fmt = "PNG" if ext == "png" else "JPEG"
    log.debug("re-encoded a %s reference as %s (%dx%d)", fmt, out_fmt, *frame_size)
    return PreparedImage(
        data=encoded,
        mime="image/jpeg" if out_fmt == "JPEG" else "image/png",
        width=frame_size[0],
        height=frame_size[1],
        content_hash=hashlib.sha256(encoded).hexdigest(),
        reencoded=True,
    )


async def prepare_image(
    data: bytes,
    *,
    max_bytes: int = MAX_IMAGE_BYTES,
    max_pixels: int = MAX_IMAGE_PIXELS,
    max_side: int | None = None,
) -> PreparedImage:
    return await asyncio.to_thread(
        prepare_image_sync, data, max_bytes=max_bytes, max_pixels=max_pixels, max_side=max_side
    )


_EXTENSIONS: Final = {"jpeg": "jpg", "mpo": "jpg", "tiff": "tif"}
_JPEG_STEPS: Final = (95, 90, 85, 80, 75)
_DOWNSCALE_STEP: Final = 0.75
_MIN_SIDE: Final = 64  # below this, give up rather than send a useless thumbnail


def _shrink(img: Image.Image, max_bytes: int) -> tuple[bytes, str, tuple[int, int]]:
    """Re-encode a decoded RGB/RGBA image until it fits ``max_bytes``.

    Alpha images stay PNG (flattening would change them) and only get smaller; opaque images
    become JPEG at falling quality, then at falling sizes. Every size is resampled from the
    full image, so steps do not blur one another.
    """
    alpha = img.mode == "RGBA"
    if not alpha:
        for quality in _JPEG_STEPS:
            encoded = _encode(img, "JPEG", quality=quality, optimize=True)
            if len(encoded) <= max_bytes:
                return encoded, "jpg", img.size
    scale = 1.0
    frame = img
    while True:
        if alpha:
            encoded = _encode(frame, "PNG", optimize=True)
            if len(encoded) <= max_bytes:
                return encoded, "png", frame.size
        scale *= _DOWNSCALE_STEP
        size = (max(1, round(img.width * scale)), max(1, round(img.height * scale)))
        if max(size) < _MIN_SIDE:
            raise ImageRejected("too_large", t("errors.image.cannot_shrink"))
        frame = img.resize(size, Image.Resampling.LANCZOS)
        if not alpha:
            encoded = _encode(frame, "JPEG", quality=_JPEG_STEPS[-1], optimize=True)
            if len(encoded) <= max_bytes:
                return encoded, "jpg", frame.size


def fit_for_upload_sync(data: bytes, *, max_bytes: int) -> tuple[bytes, str]:
    """``data`` unchanged if it fits ``max_bytes``, else a smaller re-encoding; plus extension.

    Used on outputs before posting them (Discord: 10 MiB per file by default).
    """
    fmt, _, _ = probe_sync(data)
    if len(data) <= max_bytes:
        return data, _EXTENSIONS.get(fmt, fmt)
    with _open_lazy(data) as img:
        if img.width * img.height > MAX_IMAGE_PIXELS:
            raise _too_many_pixels(img.width * img.height, MAX_IMAGE_PIXELS)
        _load_first_frame(img)
        frame = img.copy() if _orientation(img) == 1 else ImageOps.exif_transpose(img)
    frame = _normalise_mode(frame)
    if fmt == "png" and frame.mode == "RGB" and len(data) <= max_bytes * 5 // 4:
        # An optimised PNG only helps an opaque image when it is already close to fitting.
        encoded = _encode(frame, "PNG", optimize=True)
        if len(encoded) <= max_bytes:
            return encoded, "png"
    encoded, ext, _ = _shrink(frame, max_bytes)
    return encoded, ext


async def fit_for_upload(data: bytes, *, max_bytes: int) -> tuple[bytes, str]:
    return await asyncio.to_thread(fit_for_upload_sync, data, max_bytes=max_bytes)


def to_reference(img: PreparedImage, url: str | None = None) -> ReferenceImage:
    """The provider-facing value for a prepared image (``url``: a public copy, if any)."""
    return ReferenceImage(data=img.data, mime=img.mime, width=img.width, height=img.height, url=url)
