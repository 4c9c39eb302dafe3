"""The Docker image installs from requirements.lock: it must pin every runtime dependency
(at a version pyproject.toml accepts), and the Dockerfile must use it."""

from __future__ import annotations

import re
import tomllib

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.conftest import REPO_ROOT

REGENERATE = (
    "regenerate it: uv pip compile pyproject.toml --universal --python-version 3.11 "
    "--generate-hashes --no-header -o requirements.lock (keep the comment at its top)"
)


def _locked() -> dict[str, str]:
    text = (REPO_ROOT / "requirements.lock").read_text()
    return {
        canonicalize_name(m[1]): m[2]
        for m in re.finditer(r"^([A-Za-z0-9_.\-]+)==([^\s;\\]+)", text, re.MULTILINE)
    }


def test_the_lock_pins_every_runtime_dependency() -> None:
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    locked = _locked()
    for spec in project["dependencies"]:
        requirement = Requirement(spec)
        name = canonicalize_name(requirement.name)
        assert name in locked, f"{name} is not in requirements.lock; {REGENERATE}"
        assert requirement.specifier.contains(locked[name], prereleases=True), (
            f"requirements.lock pins {name}=={locked[name]}, outside {spec}; {REGENERATE}"
        )
    text = (REPO_ROOT / "requirements.lock").read_text()
    hashed = re.findall(r"^\S+==[^\n]*\\\n\s+--hash=sha256:", text, re.MULTILINE)
    assert len(hashed) == len(locked), f"every pin needs its hashes; {REGENERATE}"


def test_the_image_installs_from_the_lock_and_checks_its_health() -> None:
    dockerfile = (REPO_ROOT / "Dockerfile").read_text()
    assert "--require-hashes" in dockerfile and "-r requirements.lock" in dockerfile
    assert 'CMD ["kontext-bot", "health"]' in dockerfile
    compose = (REPO_ROOT / "docker-compose.yml").read_text()
    assert compose.count('test: ["CMD", "kontext-bot", "health"]') == 2


def test_dev_tools_are_pinned_exactly() -> None:
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    dev = {
        canonicalize_name(Requirement(s).name): s for s in project["optional-dependencies"]["dev"]
    }
    for tool in ("ruff", "mypy"):
        assert re.fullmatch(rf"{tool}==\d+(\.\d+)*", dev[tool]), dev[tool]
