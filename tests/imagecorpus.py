"""A corpus of good, odd and hostile images, made in code (no binary files in the repository).

Every helper returns ``bytes``. Small, valid images come from Pillow; images Pillow will not
write (16-bit RGB, headers that lie about their size, bombs) come from :func:`make_raw_png`,
a minimal PNG writer that streams its rows through zlib so large sizes stay cheap.
"""

from __future__ import annotations

import io
import random
import struct
import zlib

from PIL import Image, PngImagePlugin

RED = (220, 20, 60)
GREEN = (20, 200, 60)
BLUE = (30, 60, 220)


def _save(img: Image.Image, fmt: str, **params: object) -> bytes:
    out = io.BytesIO()
    img.save(out, fmt, **params)
    return out.getvalue()


def _gradient(width: int, height: int) -> Image.Image:
    """An RGB image whose corners differ, so rotations and crops are visible."""
    img = Image.new("RGB", (width, height), RED)
    img.paste(BLUE, (0, 0, max(1, width // 4), max(1, height // 4)))
    return img


# --------------------------------------------------------------------------- plain images


def make_png(width: int = 64, height: int = 48, mode: str = "RGB") -> bytes:
    img = _gradient(width, height)
    return _save(img if mode == "RGB" else img.convert(mode), "PNG")


def make_jpeg(
    width: int = 64,
    height: int = 48,
    *,
    mode: str = "RGB",
    quality: int = 90,
    orientation: int | None = None,
    icc_profile: bytes | None = None,
) -> bytes:
    """A JPEG; ``orientation`` writes that EXIF Orientation tag (6 = rotate 90° clockwise)."""
    img = _gradient(width, height)
    if mode != "RGB":
        img = img.convert(mode)
    params: dict[str, object] = {"quality": quality}
    if icc_profile is not None:
        params["icc_profile"] = icc_profile
    if orientation is not None:
        exif = Image.Exif()
        exif[0x0112] = orientation
        params["exif"] = exif.tobytes()
    return _save(img, "JPEG", **params)


#: Written into the metadata of the ``make_*_with_metadata`` images, so tests can look for it.
METADATA_MARKER = b"KONTEXT-PRIVATE-MARKER"


def gps_exif(orientation: int | None = None) -> bytes:
    """EXIF with a GPS position (52.37 N, 4.89 E), a camera name and, if given, an orientation."""
    exif = Image.Exif()
    exif[0x010F] = METADATA_MARKER.decode()  # Make
    exif[0x8825] = {1: "N", 2: (52.0, 22.0, 12.0), 3: "E", 4: (4.0, 53.0, 24.0)}  # GPS IFD
    if orientation is not None:
        exif[0x0112] = orientation
    return exif.tobytes()


def make_jpeg_with_metadata(
    width: int = 64, height: int = 48, *, orientation: int | None = None
) -> bytes:
    """A phone-style JPEG: GPS EXIF, an XMP packet and a comment, all carrying the marker."""
    xmp = b'<x:xmpmeta xmlns:x="adobe:ns:meta/">' + METADATA_MARKER + b"</x:xmpmeta>"
    return _save(
        _gradient(width, height),
        "JPEG",
        quality=90,
        exif=gps_exif(orientation),
        xmp=xmp,
        comment=METADATA_MARKER,
    )


def make_png_with_metadata(width: int = 64, height: int = 48) -> bytes:
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", METADATA_MARKER.decode())
    return _save(_gradient(width, height), "PNG", pnginfo=info, exif=gps_exif())


def make_webp_with_metadata(width: int = 64, height: int = 48) -> bytes:
    return _save(_gradient(width, height), "WEBP", exif=gps_exif(), xmp=METADATA_MARKER)


def make_cmyk_jpeg(width: int = 64, height: int = 48) -> bytes:
    return make_jpeg(width, height, mode="CMYK")


def srgb_profile() -> bytes:
    from PIL import ImageCms

    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def fake_cmyk_profile() -> bytes:
    """Enough of an ICC header to say "CMYK" (bytes 16-20); Pillow embeds it unread."""
    return b"\x00" * 16 + b"CMYK" + b"\x00" * 108


def make_webp(width: int = 64, height: int = 48, *, lossless: bool = False) -> bytes:
    return _save(_gradient(width, height), "WEBP", lossless=lossless, quality=90)


def make_rgba_webp(width: int = 64, height: int = 48) -> bytes:
    img = _gradient(width, height).convert("RGBA")
    img.putalpha(128)
    return _save(img, "WEBP", lossless=True)


def make_bmp(width: int = 64, height: int = 48) -> bytes:
    return _save(_gradient(width, height), "BMP")


def make_tiff(width: int = 64, height: int = 48) -> bytes:
    return _save(_gradient(width, height), "TIFF")


def make_ico(width: int = 32, height: int = 32) -> bytes:
    return _save(_gradient(width, height), "ICO")


# --------------------------------------------------------------------------- odd modes


def make_png_16bit_gray(width: int = 32, height: int = 32, value: int = 40000) -> bytes:
    """A 16-bit greyscale PNG (Pillow mode ``I;16``); ``value`` of 65535 is white."""
    return _save(Image.new("I;16", (width, height), value), "PNG")


def make_png_16bit_rgb(width: int = 16, height: int = 16) -> bytes:
    """A 16-bit-per-channel RGB PNG (Pillow reads it as plain ``RGB``)."""
    row = b"\x00" + b"\xff\xff\x80\x00\x00\x00" * width
    return make_raw_png(width, height, bit_depth=16, color_type=2, row=row)


def make_palette_png_transparent(width: int = 32, height: int = 32) -> bytes:
    """A palette PNG whose index 0 is transparent (a ``tRNS`` chunk)."""
    img = Image.new("P", (width, height), 0)
    img.putpalette([0, 0, 0, *RED, *GREEN] + [0] * (256 * 3 - 9))
    img.paste(1, (0, 0, width // 2, height))
    return _save(img, "PNG", transparency=0)


def make_la_png(width: int = 32, height: int = 32) -> bytes:
    img = Image.new("LA", (width, height), (200, 100))
    return _save(img, "PNG")


def make_rgba_png(width: int = 32, height: int = 32, alpha: int = 128) -> bytes:
    img = _gradient(width, height).convert("RGBA")
    img.putalpha(alpha)
    return _save(img, "PNG")


def make_gray_jpeg(width: int = 32, height: int = 32) -> bytes:
    return make_jpeg(width, height, mode="L")


# --------------------------------------------------------------------------- animations


def _frames(width: int, height: int) -> list[Image.Image]:
    return [Image.new("RGB", (width, height), colour) for colour in (RED, GREEN, BLUE)]


def make_animated_gif(width: int = 40, height: int = 30) -> bytes:
    """Three frames: red, green, blue. The first frame is red."""
    first, *rest = _frames(width, height)
    return _save(first, "GIF", save_all=True, append_images=rest, duration=100, loop=0)


def make_apng(width: int = 40, height: int = 30) -> bytes:
    """An animated PNG: red, green, blue frames. The first frame is red."""
    first, *rest = _frames(width, height)
    return _save(first, "PNG", save_all=True, append_images=rest, duration=100)


def make_animated_webp(width: int = 40, height: int = 30) -> bytes:
    first, *rest = _frames(width, height)
    return _save(first, "WEBP", save_all=True, append_images=rest, duration=100, lossless=True)


def make_mpo(width: int = 40, height: int = 30) -> bytes:
    """A multi-picture JPEG as phones write it: red first image, green second."""
    first, second, _ = _frames(width, height)
    return _save(first, "MPO", save_all=True, append_images=[second], quality=95)


# --------------------------------------------------------------------------- noise


def make_noise_png(width: int, height: int, seed: int = 7) -> bytes:
    """Random pixels: compresses badly, so it is large for its size (about 3 bytes a pixel)."""
    pixels = random.Random(seed).randbytes(width * height * 3)
    return _save(Image.frombytes("RGB", (width, height), pixels), "PNG", compress_level=1)


# --------------------------------------------------------------------------- raw PNG writer


def _chunk(kind: bytes, body: bytes) -> bytes:
    crc = zlib.crc32(kind + body) & 0xFFFFFFFF
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)


def make_raw_png(
    width: int,
    height: int,
    *,
    bit_depth: int = 1,
    color_type: int = 0,
    row: bytes | None = None,
    rows_written: int | None = None,
) -> bytes:
    """A PNG built by hand: every row is ``row`` (default: filter 0 and all-zero samples).

    ``rows_written`` below ``height`` makes a file whose header promises more rows than its
    data holds: decoding it fails as truncated, so refusing it *without* decoding is visible.
    """
    channels = {0: 1, 2: 3, 4: 2, 6: 4}[color_type]
    row_bytes = (width * channels * bit_depth + 7) // 8
    if row is None:
        row = b"\x00" * (1 + row_bytes)
    assert len(row) == 1 + row_bytes
    count = height if rows_written is None else rows_written
    packer = zlib.compressobj(9)
    parts = []
    batch = max(1, (1 << 20) // len(row))  # about 1 MiB of raw rows per call
    done = 0
    while done < count:
        step = min(batch, count - done)
        parts.append(packer.compress(row * step))
        done += step
    complete = count == height
    # A short file ends mid-stream (no zlib end, no IEND), as a cut-off download would.
    parts.append(packer.flush() if complete else packer.flush(zlib.Z_SYNC_FLUSH))
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    data = b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", b"".join(parts))
    return data + _chunk(b"IEND", b"") if complete else data


def make_bomb_png(width: int = 20_000, height: int = 20_000) -> bytes:
    """A genuine decompression bomb: tens of KiB that decode to ``width × height`` pixels."""
    return make_raw_png(width, height, bit_depth=1, color_type=0)


def make_header_only_png(width: int, height: int) -> bytes:
    """A PNG claiming ``width × height`` pixels with data for one row only."""
    return make_raw_png(width, height, bit_depth=1, color_type=0, rows_written=1)


def make_big_single_colour_png(megapixels: float = 41.0) -> bytes:
    """A valid 1-bit PNG of about ``megapixels`` (8000 wide), a few KiB on disk."""
    width = 8000
    height = round(megapixels * 1_000_000 / width)
    return make_raw_png(width, height, bit_depth=1, color_type=0)


# --------------------------------------------------------------------------- broken files


def make_truncated_png() -> bytes:
    data = make_noise_png(96, 96)
    return data[: len(data) // 2]


def make_truncated_jpeg() -> bytes:
    img = Image.frombytes("RGB", (96, 96), random.Random(3).randbytes(96 * 96 * 3))
    data = _save(img, "JPEG", quality=90)
    return data[: len(data) // 2]


def make_corrupt_png() -> bytes:
    """A complete PNG whose compressed pixel data is damaged (its CRC made to match)."""
    data = bytearray(make_noise_png(32, 32))
    start = data.index(b"IDAT") - 4
    (length,) = struct.unpack(">I", data[start : start + 4])
    data[start + 8 + 40] ^= 0xFF
    body = bytes(data[start + 4 : start + 8 + length])
    data[start + 8 + length : start + 12 + length] = struct.pack(">I", zlib.crc32(body))
    return bytes(data)


def make_corrupt_webp() -> bytes:
    """A WebP whose bitstream is zeroed after the container header."""
    data = make_webp()
    return data[:20] + b"\x00" * (len(data) - 20)


def make_pdf() -> bytes:
    return b"%PDF-1.7\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n"


def make_text() -> bytes:
    """What a text file renamed to ``.png`` contains."""
    return b"hello, this is a note saved as picture.png\n"


def make_html() -> bytes:
    return b"<!DOCTYPE html><html><body>Access denied</body></html>"


def make_heic_header() -> bytes:
    return b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x00" * 64


def make_random_bytes(size: int = 4096, seed: int = 11) -> bytes:
    return random.Random(seed).randbytes(size)
