"""The linters CI and a developer's machine share, run as part of the one test command."""

from __future__ import annotations

import importlib
import pkgutil
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import grimp

from bot.errors import KontextError
from tests.conftest import REPO_ROOT

PACKAGES = ("bot", "cogs", "storage")


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *args], cwd=REPO_ROOT, capture_output=True, text=True, check=False
    )


def test_ruff_check_is_clean() -> None:
    result = _run("ruff", "check", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_format_is_clean() -> None:
    result = _run("ruff", "format", "--check", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_strict_is_clean() -> None:
    result = _run("mypy")
    assert result.returncode == 0, result.stdout + result.stderr


def test_layer_contracts_hold() -> None:
    """The import-linter contracts of pyproject.toml (the core never imports Discord...)."""
    lint_imports = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run(
        [str(lint_imports), "--no-cache"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan, iteratively)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    groups: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                group = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.append(member)
                    if member == node:
                        break
                if len(group) > 1:
                    groups.append(sorted(group))
    return groups


def test_no_import_cycle_among_project_modules() -> None:
    """Every import counts, those under ``TYPE_CHECKING`` and inside functions included."""
    graph = grimp.build_graph("bot", "cogs", "storage", cache_dir=None)
    edges = {m: set(graph.find_modules_directly_imported_by(m)) for m in graph.modules}
    assert sorted(_cycles(edges)) == []
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_module_is_longer_than_600_lines() -> None:
    long = {
        str(path.relative_to(REPO_ROOT))
        for folder in ("bot", "cogs", "storage")
        for path in (REPO_ROOT / folder).rglob("*.py")
        if len(path.read_text(encoding="utf-8").splitlines()) > 600
    }
    assert long == set()


def test_comments_cite_nothing_outside_the_repository() -> None:
    """Comments describe the code; they do not point at issues or outside documents."""
    cited = re.compile(r"STYLE §|DESIGN\.md|\b[Ii]ssue \d+|#\d{1,4}\b")
    found = [
        f"{path.relative_to(REPO_ROOT)}:{number}"
        for folder in ("bot", "cogs", "storage")
        for path in (REPO_ROOT / folder).rglob("*.py")
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if cited.search(line)
    ]
    assert found == []


def _project_modules() -> list[ModuleType]:
    modules = []
    for package in PACKAGES:
        root = importlib.import_module(package)
        modules.append(root)
        for found in pkgutil.walk_packages(root.__path__, f"{package}."):
            if not found.name.endswith("__main__"):
                modules.append(importlib.import_module(found.name))
    return modules


def test_class_names_are_unique_among_project_modules() -> None:
    """Two classes of one name in two modules read alike and mean different things."""
    homes: dict[str, set[str]] = {}
    for module in _project_modules():
        for value in vars(module).values():
            if isinstance(value, type) and value.__module__ == module.__name__:
                homes.setdefault(value.__name__, set()).add(module.__name__)
    assert {name: sorted(where) for name, where in homes.items() if len(where) > 1} == {}


def test_errors_have_one_root_unique_names_and_their_own_codes() -> None:
    _project_modules()

    def subclasses(cls: type[KontextError]) -> set[type[KontextError]]:
        direct = set(cls.__subclasses__())
        return direct.union(*(subclasses(c) for c in direct))

    ours = {c for c in subclasses(KontextError) if c.__module__.split(".")[0] in PACKAGES}
    names = sorted(c.__name__ for c in ours)
    assert len(names) == len(set(names)), names
    assert [c.__name__ for c in ours if "code" not in vars(c)] == []
