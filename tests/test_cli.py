"""The kontext-bot CLI: real processes against the fakes, and the error mapping in-process."""

from __future__ import annotations

import asyncio
import base64
import io
import os
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from bot.cli import EXIT_FAILURE, EXIT_USAGE, main
from storage.schema import latest_version
from tests import imagecorpus
from tests.conftest import REPO_ROOT
from tests.fakes import FAKES, FakeProvider, Outcome, env_for, require_docs
from tests.fakes.threaded import ThreadedFake

_OUR_ENV = ("_API_KEY", "_API_TOKEN", "FAL_KEY", "_BASE_URL", "_MODEL", "KONTEXT_")


def _clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not any(p in k for p in _OUR_ENV)}
    env["PYTHONPATH"] = str(REPO_ROOT)
    return env


def _picture(path: Path, size: tuple[int, int] = (640, 360)) -> Path:
    Image.new("RGB", size, (10, 120, 200)).save(path)
    return path


def _assert_one_line_failure(stderr: str) -> None:
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("kontext-bot")
    assert "Traceback" not in stderr


async def _cli(fake: FakeProvider, tmp: Path, *args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        *args,
        cwd=tmp,
        env={**_clean_env(), **env_for(fake)},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


# -- real processes (kept few: each starts Python) ----------------------------------------


@pytest.mark.parametrize("name", sorted(FAKES))
async def test_edit_writes_real_images(name: str, tmp_path: Path) -> None:
    async with FAKES[name](docs=require_docs()) as fake:
        if name == "wavespeed":
            fake.script("submit", Outcome.success())  # finished at once: no 2 s poll wait
        image = _picture(tmp_path / "in.png")
        out_dir = tmp_path / "out"
        code, out, err = await _cli(
            fake,
            tmp_path,
            "edit",
            "--image",
            str(image),
            "--prompt",
            "add a hat",
            "--out-dir",
            str(out_dir),
        )
        fake.assert_clean()
    assert (code, err) == (0, "")
    paths = [Path(line) for line in out.splitlines()]
    assert len(paths) == 1 and paths[0].parent == out_dir and paths[0].suffix == ".png"
    with Image.open(paths[0]) as result:
        result.load()
        assert result.size == (1024, 576)


async def test_imagine_writes_several_images(tmp_path: Path) -> None:
    async with FAKES["aimlapi"](docs=require_docs()) as fake:
        code, out, err = await _cli(
            fake,
            tmp_path,
            "imagine",
            "--prompt",
            "a fox",
            "--num-images",
            "2",
            "--aspect-ratio",
            "9:16",
            "--output-format",
            "jpeg",
            "--out-dir",
            str(tmp_path),
        )
    assert (code, err) == (0, "")
    paths = [Path(line) for line in out.splitlines()]
    assert len(paths) == 2 and len(set(paths)) == 2
    assert all(p.suffix == ".jpg" and p.stat().st_size > 0 for p in paths)


async def test_provider_failure_is_one_line_and_exit_1(tmp_path: Path) -> None:
    async with FAKES["aimlapi"](docs=require_docs()) as fake:
        fake.script("submit", Outcome.http(401, "Invalid API key"))
        code, out, err = await _cli(
            fake, tmp_path, "imagine", "--prompt", "a fox", "--out-dir", str(tmp_path / "out")
        )
    assert code == EXIT_FAILURE and out == ""
    _assert_one_line_failure(err)
    assert "AIMLAPI_API_KEY" in err
    assert not (tmp_path / "out").exists()


async def test_retries_stay_quiet_and_the_failure_is_one_line(tmp_path: Path) -> None:
    """Connect errors are retried (the request never left); the retry warnings are logs
    for -v, so by default the user sees only the final line."""
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "imagine",
        "--prompt",
        "a fox",
        "--out-dir",
        str(tmp_path / "out"),
        cwd=tmp_path,
        env={
            **_clean_env(),
            "AIMLAPI_API_KEY": "test-key",
            "AIMLAPI_BASE_URL": f"http://127.0.0.1:{port}",
        },
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    assert process.returncode == EXIT_FAILURE and out == b""
    _assert_one_line_failure(err.decode())
    assert "Could not reach AIML API" in err.decode()
    assert not (tmp_path / "out").exists()


async def test_bad_image_is_refused_before_any_request(tmp_path: Path) -> None:
    async with FAKES["modelslab"](docs=require_docs()) as fake:
        bad = tmp_path / "notes.png"
        bad.write_text("not an image")
        code, out, err = await _cli(
            fake,
            tmp_path,
            "edit",
            "--image",
            str(bad),
            "--prompt",
            "x",
            "--out-dir",
            str(tmp_path / "o"),
        )
        assert fake.requests == []
    assert code == EXIT_USAGE and out == ""
    _assert_one_line_failure(err)
    assert "notes.png" in err


# -- the mapping, in-process --------------------------------------------------------------


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    for key in list(os.environ):
        if any(p in key for p in _OUR_ENV):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)
    yield


def _threaded(name: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeProvider]:
    with ThreadedFake(FAKES[name], docs=require_docs()) as fake:
        for key, value in env_for(fake).items():
            monkeypatch.setenv(key, value)
        yield fake
    fake.assert_clean()


@pytest.fixture(params=sorted(FAKES))
def threaded(
    request: pytest.FixtureRequest, cli_env: None, monkeypatch: pytest.MonkeyPatch
) -> Iterator[FakeProvider]:
    yield from _threaded(request.param, monkeypatch)


@pytest.fixture
def aiml_cli(cli_env: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeProvider]:
    yield from _threaded("aimlapi", monkeypatch)


FAILURES = {
    "aimlapi": [
        (Outcome.http(401), "refused the API key"),
        (Outcome.http(403, "You've run out of credits"), "out of credits"),
        (Outcome.http(400, "Body validation error!"), "refused the request"),
        (Outcome.rate_limited(3600), "Try again in 3600 s"),
        (Outcome.http(502), "had a problem"),
        (Outcome.http(504, "Generation timeout"), "timed out"),
        (Outcome.malformed(), "not valid JSON"),
        (Outcome.drop(), "Could not reach"),
        (Outcome.nsfw_flags(True), "safety filter"),
    ],
    "modelslab": [
        (Outcome.failed("Unable to fetch image from provided URL"), "Unable to fetch image"),
        (Outcome.http(402), "out of credits"),
        (Outcome.rate_limited(900, where="body", message="Maximum 5 queued requests"), "900 s"),
        (Outcome.failed("Server error"), "could not make the image"),
    ],
    "wavespeed": [
        (Outcome.failed("NSFW content detected"), "safety filter"),
        (Outcome.http(422, "image is required"), "image is required"),
        (Outcome.http(503), "had a problem"),
    ],
    "bfl": [
        (Outcome.http(402), "out of credits"),
        (Outcome.rate_limited(3600, message="Too many active tasks"), "Try again in 3600 s"),
        (Outcome.processing(0, then=Outcome.failed("Request Moderated")), "safety filter"),
    ],
    "fal": [
        (
            Outcome.http(403, "User is locked. Reason: Exhausted balance. Top up your balance."),
            "out of credits",
        ),
        (Outcome.processing(0, then=Outcome.failed("content_policy_violation")), "safety filter"),
    ],
    "replicate": [
        (Outcome.http(402), "out of credits"),
        (Outcome.rate_limited(3600, where="text"), "Try again in 3600 s"),
        (Outcome.failed("The input or output was flagged as sensitive. (E005)"), "safety filter"),
    ],
}


def test_each_failure_is_one_line_exit_1_and_no_file(
    threaded: FakeProvider, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    image = _picture(tmp_path / "in.jpg")
    for outcome, words in FAILURES[threaded.name]:
        threaded.script("submit", outcome)
        out_dir = tmp_path / "out"
        code = main(["edit", "--image", str(image), "--prompt", "x", "--out-dir", str(out_dir)])
        captured = capsys.readouterr()
        assert code == EXIT_FAILURE, (outcome, captured.err)
        _assert_one_line_failure(captured.err)
        assert words in captured.err, (outcome, captured.err)
        assert captured.out == "" and not out_dir.exists()


def _bomb(path: Path) -> Path:
    Image.new("1", (9000, 5000)).save(path)  # 45 megapixels, a few KB on disk
    return path


def _truncated(path: Path) -> Path:
    data = io.BytesIO()
    Image.new("RGB", (300, 300), (1, 2, 3)).save(data, format="JPEG")
    path.write_bytes(data.getvalue()[:400])
    return path


BAD_INPUTS = {
    "missing file": (lambda t: ["--image", str(t / "nope.png")], "no such file"),
    "empty file": (
        lambda t: ["--image", str((t / "e.png", (t / "e.png").write_bytes(b""))[0])],
        "e.png",
    ),
    "not an image": (
        lambda t: ["--image", str((t / "n.png", (t / "n.png").write_text("hi"))[0])],
        "n.png",
    ),
    "truncated": (lambda t: ["--image", str(_truncated(t / "t.jpg"))], "t.jpg"),
    "pixel bomb": (lambda t: ["--image", str(_bomb(t / "b.png"))], "b.png"),
    "five images": (lambda t: ["--image", str(_picture(t / "p.png"))] * 5, "At most 4 images"),
    "unknown ratio": (
        lambda t: ["--image", str(_picture(t / "p.png")), "--aspect-ratio", "5:4"],
        "invalid choice",
    ),
    "long prompt": (
        lambda t: ["--image", str(_picture(t / "p.png")), "--prompt", "x" * 4001],
        "4001 characters",
    ),
    "no prompt": (
        lambda t: ["--image", str(_picture(t / "p.png")), "--prompt", "  "],
        "prompt is empty",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_is_refused_with_exit_2_and_no_request(
    case: str, aiml_cli: FakeProvider, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    make, words = BAD_INPUTS[case]
    args = make(tmp_path)
    if "--prompt" not in args:
        args += ["--prompt", "x"]
    code = main(["edit", *args, "--out-dir", str(tmp_path / "out")])
    captured = capsys.readouterr()
    assert code == EXIT_USAGE
    _assert_one_line_failure(captured.err)
    assert words in captured.err
    assert aiml_cli.requests == [] and not (tmp_path / "out").exists()


def test_requests_a_provider_cannot_serve_exit_2(
    threaded: FakeProvider, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    images = [str(_picture(tmp_path / f"{n}.png")) for n in range(3)]
    if threaded.name == "aimlapi":
        args = ["edit", "--prompt", "x", "--guidance", "0.5", "--image", images[0]]
        words = "guidance from 1 to 20"
    elif threaded.name == "modelslab":
        args = ["edit", "--prompt", "x"] + [a for i in images for a in ("--image", i)]
        words = "AIML API (up to 4), WaveSpeed (up to 4), Black Forest Labs (up to 4)"
    elif threaded.name == "bfl":
        args = ["imagine", "--prompt", "x", "--num-images", "2"]
        words = "Black Forest Labs makes one image per request; you asked for 2."
    elif threaded.name == "fal":
        args = ["imagine", "--prompt", "x", "--guidance", "0.5"]
        words = "fal.ai takes guidance from 1 to 20"
    elif threaded.name == "replicate":
        args = ["edit", "--prompt", "x"] + [a for i in images for a in ("--image", i)]
        words = "Replicate takes at most 1 reference images; you gave 3."
    else:
        args = ["imagine", "--prompt", "x"]
        words = "no text-to-image model; use AIML API"
    code = main([*args, "--out-dir", str(tmp_path / "out")])
    captured = capsys.readouterr()
    assert code == EXIT_USAGE and words in captured.err
    _assert_one_line_failure(captured.err)
    assert threaded.requests == []


def test_missing_key_exit_2(
    threaded: FakeProvider,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    env = threaded.key_env or f"{threaded.name.upper()}_API_KEY"
    monkeypatch.delenv(env)
    code = main(
        ["edit", "--image", str(_picture(tmp_path / "p.png")), "--prompt", "x", "--out-dir", "o"]
    )
    captured = capsys.readouterr()
    assert code == EXIT_USAGE and f"{env} is not set" in captured.err
    assert threaded.requests == []


def test_files_are_never_overwritten(
    aiml_cli: FakeProvider, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_dir = tmp_path / "out"
    argv = ["imagine", "--prompt", "x", "--out-dir", str(out_dir)]
    assert main(argv) == 0 and main(argv) == 0
    printed = capsys.readouterr().out.split()
    assert len(set(printed)) == 2 and len(list(out_dir.iterdir())) == 2


def test_unwritable_out_dir_is_refused_before_any_request(
    aiml_cli: FakeProvider, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Nothing is paid for a result that could not be saved."""
    blocker = tmp_path / "file"
    blocker.write_text("in the way")
    code = main(["imagine", "--prompt", "x", "--out-dir", str(blocker / "out")])
    captured = capsys.readouterr()
    assert code == EXIT_USAGE and captured.out == ""
    _assert_one_line_failure(captured.err)
    assert "cannot be written" in captured.err
    assert aiml_cli.requests == []


# -- migrate ------------------------------------------------------------------------------


def test_migrate_creates_the_database_and_is_idempotent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    url = f"sqlite:///{tmp_path / 'deep' / 'kontext.db'}"
    monkeypatch.setenv("KONTEXT_DATABASE_URL", url)
    assert main(["migrate"]) == 0
    assert main(["migrate"]) == 0
    out, err = capsys.readouterr()
    newest = latest_version("sqlite")
    assert out.splitlines() == [f"{url}: schema version {newest}"] * 2 and err == ""
    assert (tmp_path / "deep" / "kontext.db").is_file()


def test_migrate_refuses_a_foreign_file_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    db = tmp_path / "kontext.db"
    db.write_bytes(b"this is not a database at all" * 100)
    monkeypatch.setenv("KONTEXT_DATABASE_URL", f"sqlite:///{db}")
    assert main(["migrate"]) == EXIT_FAILURE
    out, err = capsys.readouterr()
    assert out == ""
    _assert_one_line_failure(err)
    assert str(db) in err
    assert db.read_bytes().startswith(b"this is not a database")


# -- run ----------------------------------------------------------------------------------


async def test_run_when_discord_cannot_be_reached_is_one_line(tmp_path: Path) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "run",
        cwd=tmp_path,
        env={
            **_clean_env(),
            "DISCORD_TOKEN": "not-a-real-token",
            "AIMLAPI_API_KEY": "test-key",
            "DISCORD_API_BASE": f"http://127.0.0.1:{port}/api/v10",
            "KONTEXT_DATABASE_URL": f"sqlite:///{tmp_path / 'kontext.db'}",
            "KONTEXT_LOG_LEVEL": "ERROR",
        },
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    assert process.returncode == EXIT_FAILURE and out == b""
    _assert_one_line_failure(err.decode())
    assert f"Could not reach Discord at http://127.0.0.1:{port}/api/v10" in err.decode()
    assert "not-a-real-token" not in err.decode()


async def test_run_without_a_token_is_refused(tmp_path: Path) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "run",
        cwd=tmp_path,
        env=_clean_env(),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    assert process.returncode == EXIT_USAGE and out == b""
    _assert_one_line_failure(err.decode())
    assert "DISCORD_TOKEN is not set" in err.decode()


def test_a_photo_reaches_the_provider_without_its_metadata(
    aiml_cli: FakeProvider, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    photo = tmp_path / "holiday.jpg"
    photo.write_bytes(imagecorpus.make_jpeg_with_metadata(320, 240, orientation=6))
    assert main(["edit", "--image", str(photo), "--prompt", "x", "--out-dir", "out"]) == 0
    capsys.readouterr()
    [body] = aiml_cli.bodies("submit")
    [url] = body["image_url"] if isinstance(body["image_url"], list) else [body["image_url"]]
    sent = base64.b64decode(url.split(",", 1)[1])
    assert imagecorpus.METADATA_MARKER not in sent and b"Exif\x00\x00" not in sent
    with Image.open(io.BytesIO(sent)) as img:
        assert img.size == (240, 320)  # turned upright before the metadata went


def test_provider_text_reaches_the_terminal_escaped(
    cli_env: None,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    hostile = "image is required\x1b[2J\x1b]0;owned\x07 \u202eelif"
    for fake in _threaded("wavespeed", monkeypatch):
        fake.script("submit", Outcome.http(422, hostile))
        image = str(_picture(tmp_path / "p.png"))
        code = main(["-v", "edit", "--image", image, "--prompt", "x", "--out-dir", "out"])
        err = capsys.readouterr().err
        assert code == EXIT_FAILURE
        assert "\x1b" not in err and "\u202e" not in err and "\x07" not in err
        assert "image is required\\x1b[2J\\x1b]0;owned\\x07" in err


# -- providers ----------------------------------------------------------------------------


def test_providers_lists_capabilities_and_tests_each_key(
    cli_env: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.fakes import BflFake, ReplicateFake, WaveSpeedFake

    with (
        ThreadedFake(BflFake, docs=require_docs()) as bfl,
        ThreadedFake(ReplicateFake, docs=require_docs()) as replicate,
        ThreadedFake(WaveSpeedFake, docs=require_docs()) as wavespeed,
    ):
        for fake in (bfl, replicate, wavespeed):
            for key, value in env_for(fake).items():
                monkeypatch.setenv(key, value)
        monkeypatch.setenv("REPLICATE_API_TOKEN", "wrong")
        code = main(["providers"])
        captured = capsys.readouterr()
        assert replicate.requests[0].endpoint == "account"
        assert wavespeed.requests == []  # no cheap authenticated call: nothing is sent
    assert code == EXIT_FAILURE, captured.err  # one key was refused
    out = captured.out
    assert "bfl  Black Forest Labs  model max (flux-kontext-max; also pro)" in out
    assert "references 0–4 · text-to-image yes · images/request 1 · ratios 21:9 16:9" in out
    assert "key works: 1234 credits ($12.34)" in out
    assert "$0.08/image" in out
    assert (
        "key refused: Replicate refused the API key (HTTP 401). Check REPLICATE_API_TOKEN." in out
    )
    assert "wavespeed  WaveSpeed" in out and "key set: no cheap authenticated call" in out
    assert "not configured: aimlapi (AIMLAPI_API_KEY), modelslab (MODELSLAB_API_KEY), " in out
    assert "fal (FAL_KEY)" in out
    assert "wrong" not in out + captured.err


@pytest.mark.parametrize("name", ["bfl", "fal", "replicate"])
def test_the_new_providers_are_accepted_by_provider(name: str) -> None:
    from bot.cli import build_parser

    args = build_parser().parse_args(
        ["imagine", "--prompt", "x", "--provider", name, "--out-dir", "o"]
    )
    assert args.provider == name


def test_providers_without_any_key_is_refused(
    cli_env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["providers"])
    captured = capsys.readouterr()
    assert code == EXIT_USAGE
    _assert_one_line_failure(captured.err)
    assert "No provider has a key. Set one of AIMLAPI_API_KEY" in captured.err
