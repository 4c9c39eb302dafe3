"""bot.images against a corpus of good, odd and hostile images made in code."""

from __future__ import annotations

import hashlib
import io
import threading
import warnings
from collections.abc import Iterator
from typing import Any

import pytest
from PIL import Image, ImageFile

from bot import images
from bot.errors import KontextError
from bot.images import (
    MAX_IMAGE_BYTES,
    MAX_IMAGE_PIXELS,
    ImageRejected,
    PreparedImage,
    fit_for_upload,
    fit_for_upload_sync,
    prepare_image,
    prepare_image_sync,
    probe,
    probe_sync,
    to_reference,
)
from tests import imagecorpus as corpus


def decode(data: bytes) -> Image.Image:
    img = Image.open(io.BytesIO(data))
    img.load()
    return img


def rejected(data: bytes, **kwargs: int) -> ImageRejected:
    with pytest.raises(ImageRejected) as info:
        prepare_image_sync(data, **kwargs)
    err = info.value
    assert isinstance(err, KontextError)
    assert err.code == "bad_image"
    assert err.user_message == str(err)
    return err


@pytest.fixture
def load_calls(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[int, int]]]:
    """Records every full decode (ImageFile.load) with the size of the image decoded."""
    calls: list[tuple[int, int]] = []
    original = ImageFile.ImageFile.load

    def spy(self: ImageFile.ImageFile) -> object:
        calls.append(self.size)
        return original(self)

    monkeypatch.setattr(ImageFile.ImageFile, "load", spy)
    yield calls


# --------------------------------------------------------------------------- pass-through


@pytest.mark.parametrize(
    ("data", "mime"),
    [
        (corpus.make_png(64, 48), "image/png"),
        (corpus.make_rgba_png(32, 32), "image/png"),
        (corpus.make_jpeg(64, 48), "image/jpeg"),
        (corpus.make_webp(64, 48), "image/webp"),
        (corpus.make_rgba_webp(64, 48), "image/webp"),
    ],
    ids=["png", "rgba-png", "jpeg", "webp", "rgba-webp"],
)
def test_plain_images_are_kept_byte_for_byte(data: bytes, mime: str) -> None:
    img = prepare_image_sync(data)
    assert img.data is data
    assert img.reencoded is False
    assert img.mime == mime
    assert img.content_hash == hashlib.sha256(data).hexdigest()
    with Image.open(io.BytesIO(data)) as original:
        assert (img.width, img.height) == original.size


def test_prepared_image_repr_hides_bytes() -> None:
    img = prepare_image_sync(corpus.make_png())
    assert "data=" not in repr(img)
    assert isinstance(img, PreparedImage)


async def test_async_versions_match_sync() -> None:
    data = corpus.make_jpeg(50, 40, orientation=6)
    assert await prepare_image(data) == prepare_image_sync(data)
    assert await probe(data) == ("jpeg", 50, 40)
    assert await fit_for_upload(data, max_bytes=10**6) == (data, "jpg")


async def test_async_versions_work_off_the_event_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    loop_thread = threading.current_thread()
    calls: list[tuple[str, threading.Thread]] = []
    names = ("prepare_image_sync", "probe_sync", "fit_for_upload_sync")
    for name in names:
        original = getattr(images, name)

        def spy(
            *args: object, _name: str = name, _original: Any = original, **kw: object
        ) -> object:
            calls.append((_name, threading.current_thread()))
            return _original(*args, **kw)

        monkeypatch.setattr(images, name, spy)
    data = corpus.make_png()
    await prepare_image(data)
    await probe(data)
    await fit_for_upload(data, max_bytes=len(data))
    assert {name for name, _ in calls} == set(names)
    assert all(thread is not loop_thread for _, thread in calls)


def test_to_reference_carries_bytes_and_url() -> None:
    img = prepare_image_sync(corpus.make_png(30, 20))
    ref = to_reference(img, "https://cdn.discordapp.com/a/b.png")
    assert ref.data == img.data
    assert (ref.mime, ref.width, ref.height) == ("image/png", 30, 20)
    assert ref.url == "https://cdn.discordapp.com/a/b.png"
    assert to_reference(img).url is None


# --------------------------------------------------------------------------- normalisation


def test_exif_orientation_is_applied() -> None:
    data = corpus.make_jpeg(64, 48, orientation=6)
    img = prepare_image_sync(data)
    assert img.reencoded is True
    assert img.mime == "image/jpeg"
    assert (img.width, img.height) == (48, 64)
    out = decode(img.data)
    assert out.size == (48, 64)
    assert out.getexif().get(0x0112) is None  # metadata is not carried into re-encodings
    # Orientation 6 turns the top-left (blue) corner to the top-right.
    top_right = out.getpixel((out.width - 2, 1))
    assert isinstance(top_right, tuple)
    assert top_right[2] > 150 and top_right[0] < 100


def test_rgb_colour_profile_survives_reencoding_but_a_cmyk_one_does_not() -> None:
    srgb = corpus.srgb_profile()
    rotated = prepare_image_sync(corpus.make_jpeg(orientation=6, icc_profile=srgb))
    assert rotated.reencoded and decode(rotated.data).info.get("icc_profile") == srgb
    cmyk = corpus.make_jpeg(mode="CMYK", icc_profile=corpus.fake_cmyk_profile())
    assert "icc_profile" not in decode(prepare_image_sync(cmyk).data).info


def test_cmyk_jpeg_becomes_rgb_jpeg() -> None:
    img = prepare_image_sync(corpus.make_cmyk_jpeg())
    assert img.reencoded and img.mime == "image/jpeg"
    assert decode(img.data).mode == "RGB"


def test_gray_jpeg_becomes_rgb() -> None:
    img = prepare_image_sync(corpus.make_gray_jpeg())
    assert img.reencoded and decode(img.data).mode == "RGB"


def test_16bit_gray_png_is_scaled_not_clipped() -> None:
    img = prepare_image_sync(corpus.make_png_16bit_gray(value=32896))  # half of 65535 + 1
    assert img.reencoded and img.mime == "image/png"
    out = decode(img.data)
    assert out.mode == "RGB"
    assert out.getpixel((0, 0)) == (128, 128, 128)


def test_16bit_rgb_png_is_reencoded_as_8bit() -> None:
    data = corpus.make_png_16bit_rgb()
    img = prepare_image_sync(data)
    assert img.reencoded and img.data != data
    assert img.data[24] == 8  # IHDR bit depth
    assert decode(img.data).getpixel((0, 0)) == (255, 128, 0)


def test_palette_with_transparency_becomes_rgba() -> None:
    img = prepare_image_sync(corpus.make_palette_png_transparent())
    out = decode(img.data)
    assert img.mime == "image/png" and out.mode == "RGBA"
    assert out.getpixel((0, 0)) == (*corpus.RED, 255)
    right = out.getpixel((31, 0))
    assert isinstance(right, tuple) and right[3] == 0


def test_la_becomes_rgba() -> None:
    img = prepare_image_sync(corpus.make_la_png())
    out = decode(img.data)
    assert out.mode == "RGBA"
    assert out.getpixel((0, 0)) == (200, 200, 200, 100)


@pytest.mark.parametrize(
    "data",
    [corpus.make_animated_gif(), corpus.make_apng(), corpus.make_animated_webp()],
    ids=["gif", "apng", "webp"],
)
def test_animations_give_their_first_frame(data: bytes) -> None:
    img = prepare_image_sync(data)
    assert img.reencoded and img.mime == "image/png"
    out = decode(img.data)
    assert getattr(out, "n_frames", 1) == 1
    assert out.size == (40, 30)
    assert out.convert("RGB").getpixel((5, 5)) == corpus.RED


def test_mpo_gives_its_first_image_as_jpeg() -> None:
    data = corpus.make_mpo()
    with Image.open(io.BytesIO(data)) as original:
        assert original.format == "MPO"
    img = prepare_image_sync(data)
    assert img.reencoded and img.mime == "image/jpeg"
    out = decode(img.data)
    assert getattr(out, "n_frames", 1) == 1
    red, green, blue = out.getpixel((5, 5))  # type: ignore[misc]
    assert red > 180 and green < 60 and blue < 90


def test_max_side_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_side"):
        prepare_image_sync(corpus.make_png(), max_side=0)


@pytest.mark.parametrize("data", [corpus.make_bmp(), corpus.make_tiff()], ids=["bmp", "tiff"])
def test_bmp_and_tiff_are_accepted_as_png(data: bytes) -> None:
    img = prepare_image_sync(data)
    assert img.reencoded and img.mime == "image/png"
    assert (img.width, img.height) == (64, 48)


def test_lossless_webp_needing_work_becomes_png_and_lossy_becomes_jpeg() -> None:
    assert prepare_image_sync(corpus.make_webp(80, 40, lossless=True), max_side=40).mime == (
        "image/png"
    )
    assert prepare_image_sync(corpus.make_webp(80, 40), max_side=40).mime == "image/jpeg"


def test_downscale_to_max_side_keeps_aspect_ratio() -> None:
    img = prepare_image_sync(corpus.make_png(400, 100), max_side=200)
    assert img.reencoded and (img.width, img.height) == (200, 50)
    assert decode(img.data).size == (200, 50)
    tall = prepare_image_sync(corpus.make_jpeg(90, 300), max_side=150)
    assert (tall.width, tall.height) == (45, 150) and tall.mime == "image/jpeg"


def test_max_side_at_or_above_size_keeps_bytes() -> None:
    data = corpus.make_png(200, 100)
    assert prepare_image_sync(data, max_side=200).data is data


def test_reencoding_that_grows_past_max_bytes_is_shrunk() -> None:
    data = corpus.make_noise_png(200, 200)  # about 120 KB
    img = prepare_image_sync(data, max_side=199, max_bytes=len(data))
    assert len(img.data) <= len(data)
    assert decode(img.data).size == (img.width, img.height)


# --------------------------------------------------------------------------- refusals


def test_empty_bytes() -> None:
    err = rejected(b"")
    assert err.reason == "empty"
    assert "empty" in err.user_message


@pytest.mark.parametrize(
    ("data", "hint"),
    [
        (corpus.make_text(), "text"),
        (corpus.make_pdf(), "PDF"),
        (corpus.make_html(), "web page"),
        (corpus.make_heic_header(), "HEIC"),
        (corpus.make_random_bytes(), "known image format"),
        (corpus.make_ico(), "known image format"),
        (b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(28), "known image format"),
    ],
    ids=["text-named-png", "pdf", "html", "heic", "random", "ico", "wav"],
)
def test_non_images_are_refused_by_content(data: bytes, hint: str) -> None:
    err = rejected(data)
    assert err.reason == "not_an_image"
    assert hint in err.user_message
    assert "PNG, JPEG or WebP" in err.user_message


def test_pdf_message_reads_well() -> None:
    assert rejected(corpus.make_pdf()).user_message == (
        "That file isn't an image I can read (it looks like a PDF). "
        "Attach a PNG, JPEG or WebP image."
    )


@pytest.mark.parametrize(
    "data", [corpus.make_truncated_png(), corpus.make_truncated_jpeg()], ids=["png", "jpeg"]
)
def test_truncated_files_are_refused(data: bytes) -> None:
    err = rejected(data)
    assert err.reason == "truncated"
    assert "incomplete" in err.user_message
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


@pytest.mark.parametrize(
    "data",
    [
        corpus.make_png()[:40],  # signature and part of the header
        corpus.make_png()[:60],
        corpus.make_jpeg()[:100],
        corpus.make_jpeg()[:300],
        corpus.make_animated_gif()[:20],
    ],
    ids=["png-40", "png-60", "jpeg-100", "jpeg-300", "gif-20"],
)
def test_files_cut_inside_the_header_are_truncated_not_foreign(data: bytes) -> None:
    assert rejected(data).reason == "truncated"


@pytest.mark.parametrize(
    "data", [corpus.make_corrupt_png(), corpus.make_corrupt_webp()], ids=["png", "webp"]
)
def test_damaged_image_data_is_corrupt(data: bytes) -> None:
    err = rejected(data)
    assert err.reason == "corrupt"
    assert "damaged" in err.user_message


def test_over_25_mib_is_refused_before_reading() -> None:
    data = corpus.make_png() + b"\x00" * (MAX_IMAGE_BYTES + 1)
    err = rejected(data)
    assert err.reason == "too_large"
    assert "the limit is 25.0 MiB" in err.user_message


def test_byte_limit_is_a_parameter() -> None:
    data = corpus.make_png()
    assert rejected(data, max_bytes=len(data) - 1).reason == "too_large"
    assert prepare_image_sync(data, max_bytes=len(data)).data is data


def test_41_megapixel_image_is_refused(load_calls: list[tuple[int, int]]) -> None:
    data = corpus.make_big_single_colour_png(41.0)
    assert len(data) < 100_000  # small on disk, huge in memory
    err = rejected(data)
    assert err.reason == "too_many_pixels"
    assert err.user_message == (
        "That image is 41.0 megapixels; the limit is 40. Downscale it and try again."
    )
    assert load_calls == []
    assert MAX_IMAGE_PIXELS == 40_000_000


def test_pixel_check_happens_before_any_decode(load_calls: list[tuple[int, int]]) -> None:
    # This file only holds one row: decoding it would fail as "truncated". Being refused for
    # its size, with no load() at all, shows the header alone decided.
    data = corpus.make_header_only_png(8000, 6000)
    assert rejected(data).reason == "too_many_pixels"
    assert load_calls == []
    # The same file under a generous limit is decoded, and then found truncated.
    assert rejected(data, max_pixels=50_000_000).reason == "truncated"
    assert load_calls == [(8000, 6000)]


@pytest.mark.parametrize(
    ("width", "height"),
    [(20_000, 20_000), (10_000, 10_000)],  # beyond Pillow's error limit; in its warning range
    ids=["error-range", "warning-range"],
)
def test_decompression_bombs_are_refused_without_decoding(
    width: int, height: int, load_calls: list[tuple[int, int]]
) -> None:
    data = corpus.make_bomb_png(width, height)
    assert len(data) < 200_000
    err = rejected(data)  # filterwarnings=error: any escaping warning would fail this test
    assert err.reason == "too_many_pixels"
    assert f"{width * height / 1e6:.1f} megapixels" in err.user_message
    assert load_calls == []


def test_bomb_warning_never_escapes_under_default_filters() -> None:
    data = corpus.make_bomb_png(10_000, 10_000)  # Pillow only warns at this size
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert rejected(data).reason == "too_many_pixels"
    assert caught == []


def test_pixel_limit_is_a_parameter() -> None:
    assert rejected(corpus.make_png(100, 100), max_pixels=9_999).reason == "too_many_pixels"


# --------------------------------------------------------------------------- probe


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (corpus.make_png(10, 20), ("png", 10, 20)),
        (corpus.make_jpeg(30, 40), ("jpeg", 30, 40)),
        (corpus.make_webp(5, 6), ("webp", 5, 6)),
        (corpus.make_animated_gif(), ("gif", 40, 30)),
    ],
    ids=["png", "jpeg", "webp", "gif"],
)
def test_probe_reads_the_header(data: bytes, expected: tuple[str, int, int]) -> None:
    assert probe_sync(data) == expected


def test_probe_does_not_decode(load_calls: list[tuple[int, int]]) -> None:
    assert probe_sync(corpus.make_header_only_png(3000, 2000)) == ("png", 3000, 2000)
    assert load_calls == []


def test_probe_refuses_non_images() -> None:
    with pytest.raises(ImageRejected) as info:
        probe_sync(corpus.make_pdf())
    assert info.value.reason == "not_an_image"
    with pytest.raises(ImageRejected) as info:
        probe_sync(b"")
    assert info.value.reason == "empty"


# --------------------------------------------------------------------------- fit for upload


def test_fit_keeps_bytes_that_fit() -> None:
    png = corpus.make_png()
    assert fit_for_upload_sync(png, max_bytes=len(png)) == (png, "png")
    jpeg = corpus.make_jpeg()
    assert fit_for_upload_sync(jpeg, max_bytes=10**6) == (jpeg, "jpg")


def test_fit_shrinks_a_noisy_image_under_a_small_cap() -> None:
    data = corpus.make_noise_png(600, 400)  # about 720 KB of noise
    cap = 100_000
    out, ext = fit_for_upload_sync(data, max_bytes=cap)
    assert len(out) <= cap
    assert ext == "jpg"
    img = decode(out)
    assert img.format == "JPEG"
    assert img.width / img.height == pytest.approx(1.5, rel=0.02)


def test_fit_prefers_an_optimised_png_when_close() -> None:
    # Stored without compression, a flat image gets far smaller as an optimised PNG.
    img = Image.new("RGB", (200, 200), corpus.GREEN)
    out = io.BytesIO()
    img.save(out, "PNG", compress_level=0)
    data = out.getvalue()
    fitted, ext = fit_for_upload_sync(data, max_bytes=len(data) - 1)
    assert ext == "png"
    assert decode(fitted).getpixel((0, 0)) == corpus.GREEN


def test_fit_keeps_alpha_as_png() -> None:
    noisy = Image.frombytes("RGBA", (300, 300), corpus.make_random_bytes(300 * 300 * 4))
    out = io.BytesIO()
    noisy.save(out, "PNG", compress_level=1)
    data = out.getvalue()
    fitted, ext = fit_for_upload_sync(data, max_bytes=len(data) // 3)
    assert ext == "png"
    assert len(fitted) <= len(data) // 3
    assert decode(fitted).mode == "RGBA"


def test_fit_gives_up_below_a_useful_size() -> None:
    with pytest.raises(ImageRejected) as info:
        fit_for_upload_sync(corpus.make_noise_png(300, 200), max_bytes=200)
    assert info.value.reason == "too_large"


def test_fit_refuses_non_images() -> None:
    with pytest.raises(ImageRejected):
        fit_for_upload_sync(corpus.make_text(), max_bytes=10)


# --------------------------------------------------------------------------- privacy


@pytest.mark.parametrize(
    ("data", "mime"),
    [
        (corpus.make_jpeg_with_metadata(), "image/jpeg"),
        (corpus.make_png_with_metadata(), "image/png"),
        (corpus.make_webp_with_metadata(), "image/jpeg"),
    ],
    ids=["jpeg", "png", "webp"],
)
def test_metadata_never_passes_through(data: bytes, mime: str) -> None:
    """GPS EXIF, XMP, comments and text chunks are dropped even from otherwise plain files."""
    assert corpus.METADATA_MARKER in data
    img = prepare_image_sync(data)
    assert img.reencoded is True and img.mime == mime
    assert corpus.METADATA_MARKER not in img.data
    out = decode(img.data)
    assert not out.getexif() and not {"exif", "xmp", "comment", "Comment"} & out.info.keys()


def test_orientation_is_applied_before_the_metadata_goes() -> None:
    img = prepare_image_sync(corpus.make_jpeg_with_metadata(64, 48, orientation=6))
    assert (img.width, img.height) == (48, 64)
    assert corpus.METADATA_MARKER not in img.data and not decode(img.data).getexif()
