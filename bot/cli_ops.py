"""Operator subcommands of ``kontext-bot``: ``backup`` and ``restore`` (see bot.ops.backup),
``health`` (asks the running bot's ``/healthz``; the Docker health check) and ``doctor``
(checks a setup, see bot.ops.doctor).

Each ``add_*`` function adds its parser and sets ``handler`` as :mod:`bot.cli` expects; they
are listed in :data:`OPS_COMMANDS`.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bot.cli_base import EXIT_FAILURE, EXIT_OK, CliRefused, add_command
from bot.config import Settings
from bot.errors import KontextError
from bot.ops.backup import BackupError, backup_sqlite, restore_sqlite
from storage import open_repository, redact_url, resolve_database_url


class OpsRefusal(KontextError):
    code = "usage"


class HealthFailed(KontextError):
    code = "unhealthy"


def _sqlite_paths(settings: Settings, command: str) -> tuple[Path, Path]:
    """The database file and the image folder of a SQLite URL; PostgreSQL is refused."""
    from storage.sqlite import SqliteRepository

    url = resolve_database_url(settings.database_url.get_secret_value())
    repo = open_repository(url)
    if not isinstance(repo, SqliteRepository):
        raise OpsRefusal(
            f"KONTEXT_DATABASE_URL is {redact_url(url)}, a PostgreSQL database: `{command}` "
            "handles the embedded SQLite storage only. Use pg_dump / pg_restore (see README)."
        )
    return repo.path, repo.data_dir / "blobs"


def add_backup(commands: argparse._SubParsersAction[Any]) -> None:
    parser = add_command(
        commands,
        "backup",
        "copy the SQLite database and its images into a new folder (while running)",
        _backup,
    )
    parser.add_argument("path", type=Path, help="a folder that does not exist yet (or is empty)")


def _backup(args: argparse.Namespace, settings: Settings) -> int:
    try:
        db_path, blob_root = _sqlite_paths(settings, "backup")
    except OpsRefusal as err:
        raise CliRefused(err) from err
    try:
        result = asyncio.run(asyncio.to_thread(backup_sqlite, db_path, blob_root, args.path))
    except BackupError as err:
        raise CliRefused(err) from err
    sys.stdout.write(f"backed up {db_path} and {result.images} images to {args.path}\n")
    return EXIT_OK


def add_restore(commands: argparse._SubParsersAction[Any]) -> None:
    parser = add_command(
        commands, "restore", "put a backup in place as KONTEXT_DATABASE_URL (bot stopped)", _restore
    )
    parser.add_argument("path", type=Path, help="a folder made by `kontext-bot backup`")


def _restore(args: argparse.Namespace, settings: Settings) -> int:
    try:
        db_path, blob_root = _sqlite_paths(settings, "restore")
        result = restore_sqlite(args.path, db_path, blob_root)
    except (OpsRefusal, BackupError) as err:
        raise CliRefused(err) from err
    sys.stdout.write(f"restored {args.path} to {db_path} ({result.images} images)\n")
    return EXIT_OK


def add_health(commands: argparse._SubParsersAction[Any]) -> None:
    add_command(
        commands,
        "health",
        "ask the running bot's /healthz (KONTEXT_HTTP_PORT); exit 0 when healthy",
        _health,
    )


def _health(args: argparse.Namespace, settings: Settings) -> int:
    import httpx

    if settings.http_port is None:
        raise CliRefused(OpsRefusal("KONTEXT_HTTP_PORT is not set, so the bot serves no /healthz."))
    host = settings.http_host
    if host in {"0.0.0.0", "::", ""}:  # noqa: S104 - bound to every address: ask loopback
        host = "127.0.0.1"
    url = f"http://{host}:{settings.http_port}/healthz"
    try:
        answer = httpx.get(url, timeout=5.0)
    except httpx.HTTPError as err:
        raise HealthFailed(
            f"{url} did not answer ({type(err).__name__}): is the bot running?"
        ) from err
    sys.stdout.write(answer.text.strip() + "\n")
    if answer.status_code != 200:
        raise HealthFailed(f"{url} answered {answer.status_code}: {', '.join(_down(answer))} down.")
    return EXIT_OK


def _down(answer: Any) -> list[str]:
    try:
        down = answer.json().get("down")
    except ValueError:
        return ["something"]
    return [str(d) for d in down] if isinstance(down, list) and down else ["something"]


def add_doctor(commands: argparse._SubParsersAction[Any]) -> None:
    add_command(
        commands,
        "doctor",
        "check the setup: one line per check, exit 0 only when all pass",
        _doctor,
    )


def _doctor(args: argparse.Namespace, settings: Settings) -> int:
    import httpx

    from bot.ops.doctor import report, run_checks

    async def check() -> tuple[bool, str]:
        async with httpx.AsyncClient(follow_redirects=False) as http:
            return report(await run_checks(settings, http))

    passed, text = asyncio.run(check())
    sys.stdout.write(text)
    return EXIT_OK if passed else EXIT_FAILURE


OPS_COMMANDS: tuple[Callable[[argparse._SubParsersAction[Any]], None], ...] = (
    add_backup,
    add_restore,
    add_health,
    add_doctor,
)
