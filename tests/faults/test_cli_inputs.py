"""Bad input to ``kontext-bot edit``/``imagine``: every row is refused before any request.

Each row runs ``main()`` in-process against the provider fakes (served from a thread) and
asserts exit code 2, exactly one stderr line with the expected words and no raw control
character, no provider request, and no output folder left behind.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from PIL import Image

from bot.cli import EXIT_USAGE, main, read_image_file
from bot.images import MAX_IMAGE_BYTES
from tests.fakes import FAKES, FakeProvider, env_for, require_docs
from tests.fakes.threaded import ThreadedFake

_OUR_ENV = ("_API_KEY", "_BASE_URL", "KONTEXT_")


def _picture(tmp: Path) -> str:
    path = tmp / "p.png"
    Image.new("RGB", (64, 48), (10, 120, 200)).save(path)
    return str(path)


def _fifo(tmp: Path) -> str:
    path = tmp / "pipe.png"
    os.mkfifo(path)  # nobody ever writes: a blocking open or read would hang
    return str(path)


def _folder(tmp: Path) -> str:
    (tmp / "photos.png").mkdir()
    return str(tmp / "photos.png")


def _socket_file(tmp: Path) -> str:
    path = tmp / "s.png"
    with socket.socket(socket.AF_UNIX) as listener:
        listener.bind(str(path))
    return str(path)


def _sparse(tmp: Path) -> str:
    path = tmp / "huge.png"
    with path.open("wb") as handle:
        handle.truncate(MAX_IMAGE_BYTES + 1)
    return str(path)


def _loop(tmp: Path) -> str:
    (tmp / "a.png").symlink_to(tmp / "b.png")
    (tmp / "b.png").symlink_to(tmp / "a.png")
    return str(tmp / "a.png")


def _named(name: str, data: bytes | None = b"just text") -> Callable[[Path], str]:
    def make(tmp: Path) -> str:
        if data is not None:
            (tmp / name).write_bytes(data)
        return str(tmp / name)

    return make


def _file(tmp: Path) -> str:
    (tmp / "taken").write_text("a file, not a folder")
    return str(tmp / "taken")


@dataclass(frozen=True)
class Row:
    words: str
    image: Callable[[Path], str] | None = _picture  # None: imagine (no image)
    prompt: str = "add a hat"
    extra: tuple[str, ...] = ()
    provider: str = "aimlapi"
    out_dir: Callable[[Path], str] | None = None  # None: tmp/out, which must not appear
    images: int = 1
    unchanged: tuple[str, ...] = field(default=())  # text that must appear escaped


ROWS: dict[str, Row] = {
    # --image that is not a regular file, or cannot be read within the cap
    "image is /dev/zero": Row("/dev/zero is a device", image=lambda _: "/dev/zero"),
    "image is /dev/null": Row("/dev/null is a device", image=lambda _: "/dev/null"),
    "image is a FIFO": Row("is a named pipe, not an image file", image=_fifo),
    "image is a folder": Row("photos.png is a folder", image=_folder),
    "image is a socket": Row("cannot read it", image=_socket_file),
    "image is a symlink loop": Row("cannot read it", image=_loop),
    "image is missing": Row("no such file", image=_named("nope.png", None)),
    "image over the size cap": Row("the limit is 25.0 MiB", image=_sparse),
    "image is empty": Row("That file is empty", image=_named("e.png", b"")),
    "image is text": Row("isn't an image I can read", image=_named("n.png")),
    "five images": Row("At most 4 images per request; you gave 5", images=5),
    # names and text printed to the terminal have their control characters escaped
    "ANSI escape in a file name": Row(
        "\\x1b[31mred.png: That file isn't an image", image=_named("\x1b[31mred.png")
    ),
    "RTL override in a file name": Row(
        "\\u202egnp.exe: no such file", image=_named("\u202egnp.exe", None)
    ),
    "escape sequence as a seed": Row(
        "'\\x1b[2J' is not a whole number", extra=("--seed", "\x1b[2J")
    ),
    # prompts with nothing visible in them, or too long
    "empty prompt": Row("The prompt is empty", prompt=""),
    "whitespace prompt": Row("The prompt is empty", prompt=" \t\n "),
    "zero-width prompt": Row("The prompt is empty", prompt="\u200b\u200c\u200d"),
    "word joiner and BOM prompt": Row("The prompt is empty", prompt="\u2060\ufeff \u00a0"),
    "direction marks prompt": Row("The prompt is empty", prompt="\u200e\u200f\u202e"),
    "Hangul filler prompt": Row("The prompt is empty", prompt="\u3164 \u2800"),
    "imagine with an invisible prompt": Row("The prompt is empty", image=None, prompt="\u200b"),
    "prompt over 4000 characters": Row("4001 characters", prompt="x" * 4001),
    # seeds and other values outside what the provider documents
    "seed 0": Row("0 must be 1 or more", extra=("--seed", "0")),
    "negative seed": Row("-5 must be 1 or more", extra=("--seed", "-5")),
    "seed not a number": Row("'1e3' is not a whole number", extra=("--seed", "1e3")),
    "seed past JSON integers": Row(
        f"AIML API takes seeds from 1 to {2**53 - 1}", extra=("--seed", str(2**64))
    ),
    "seed past WaveSpeed's range": Row(
        "WaveSpeed takes seeds from 1 to 9999999999; you gave 10000000000",
        extra=("--seed", str(10**10)),
        provider="wavespeed",
    ),
    "guidance below the range": Row("guidance from 1 to 20", extra=("--guidance", "0.5")),
    "unknown aspect ratio": Row("invalid choice: '5:4'", extra=("--aspect-ratio", "5:4")),
    "six images asked for": Row("6 is more than 4", extra=("--num-images", "6")),
    "text-to-image where there is none": Row(
        "ModelsLab has no text-to-image model", image=None, provider="modelslab"
    ),
    # an --out-dir that cannot take the result
    "out-dir is a file": Row("cannot be written (it is not a folder)", out_dir=_file),
    "out-dir under a file": Row("cannot be written", out_dir=lambda t: str(Path(_file(t)) / "out")),
    "out-dir is /dev/null": Row("cannot be written", out_dir=lambda _: "/dev/null"),
    "out-dir inside /proc": Row("cannot be written", out_dir=lambda _: "/proc/kontext-out"),
}


@pytest.fixture(scope="module")
def fakes() -> Iterator[dict[str, FakeProvider]]:
    docs = require_docs()
    threads = {name: ThreadedFake(FAKES[name], docs=docs) for name in FAKES}
    running = {name: thread.__enter__() for name, thread in threads.items()}
    try:
        yield running
    finally:
        for thread in threads.values():
            thread.__exit__(None, None, None)


@pytest.mark.parametrize("case", list(ROWS))
def test_bad_cli_input_is_refused_before_any_request(
    case: str,
    fakes: dict[str, FakeProvider],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    row = ROWS[case]
    for key in list(os.environ):
        if any(p in key for p in _OUR_ENV):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)
    fake = fakes[row.provider]
    fake.requests.clear()
    for key, value in env_for(fake).items():
        monkeypatch.setenv(key, value)
    argv = ["imagine"] if row.image is None else ["edit"]
    if row.image is not None:
        path = row.image(tmp_path)
        argv += ["--image", path] * row.images
    default_out = tmp_path / "out"
    out_dir = row.out_dir(tmp_path) if row.out_dir else str(default_out)
    argv += ["--prompt", row.prompt, *row.extra, "--out-dir", out_dir]

    code = main(argv)

    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert code == EXIT_USAGE, captured.err
    assert len(lines) == 1 and lines[0].startswith("kontext-bot"), captured.err
    assert row.words in lines[0]
    assert lines[0].isprintable(), f"raw control characters reach the terminal: {lines[0]!r}"
    assert captured.out == ""
    assert fake.requests == [], "a refused input must not reach the provider"
    assert not default_out.exists()
    fake.assert_clean()


def test_rows_cover_enough_kinds() -> None:
    assert len(ROWS) >= 25


def test_reading_stops_one_byte_past_the_cap() -> None:
    """/proc files say they are empty yet hold bytes: the read itself must be capped."""
    data = read_image_file(Path("/proc/self/maps"), cap=10)
    assert len(data) == 11
