"""``kontext-bot edit``/``imagine`` itself (in-process, real clock) against a misbehaving fake.

Kept to the two faults whose handling lives in the command's own clock: a provider that
trickles its answer must be cut off at ``KONTEXT_JOB_DEADLINE_SECONDS`` with one line on
stderr, and a short ``Retry-After`` must be waited out, then the request sent again.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from bot.cli import EXIT_FAILURE, main
from tests.fakes import FAKES, FakeProvider, Outcome, env_for, require_docs
from tests.fakes.threaded import ThreadedFake


@pytest.fixture
def aiml(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[FakeProvider]:
    docs = require_docs()  # before the settings below are cleared from the environment
    for key in list(os.environ):
        if key.startswith("KONTEXT_") or key.endswith(("_API_KEY", "_BASE_URL")):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)
    with ThreadedFake(FAKES["aimlapi"], docs=docs) as fake:
        for key, value in env_for(fake).items():
            monkeypatch.setenv(key, value)
        yield fake
    fake.assert_clean()


def _edit(tmp_path: Path) -> list[str]:
    image = tmp_path / "in.png"
    Image.new("RGB", (64, 48), (10, 120, 200)).save(image)
    return ["edit", "--image", str(image), "--prompt", "add a hat", "--out-dir", "out"]


def test_a_trickling_answer_ends_at_the_deadline_in_one_line(
    aiml: FakeProvider,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("KONTEXT_JOB_DEADLINE_SECONDS", "1")
    aiml.script("submit", Outcome.trickle(interval=0.1))
    code = main(_edit(tmp_path))
    captured = capsys.readouterr()
    assert code == EXIT_FAILURE and captured.out == ""
    (line,) = captured.err.splitlines()
    assert line.startswith("kontext-bot: ") and "did not finish within 1 s" in line
    assert aiml.submits == 1 and not (tmp_path / "out").exists()


def test_a_short_retry_after_is_waited_out(
    aiml: FakeProvider, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    aiml.script("submit", Outcome.rate_limited(1))
    code = main(_edit(tmp_path))
    captured = capsys.readouterr()
    assert (code, captured.err) == (0, "")
    assert len(captured.out.splitlines()) == 1
    assert aiml.submits == 2
