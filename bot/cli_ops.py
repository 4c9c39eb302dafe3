"""Operator subcommands of ``kontext-bot``: ``backup`` and ``restore`` (see bot.ops.backup),
``health`` (asks the running bot's ``/healthz``; the Docker health check), ``doctor``
(checks a setup, see bot.ops.doctor and bot.discord.doctor) and ``sync`` (registers the
slash commands now, see bot.discord.command_sync).

Each ``add_*`` function adds its parser and sets ``handler`` as :mod:`bot.cli` expects; they
are listed in :data:`OPS_COMMANDS`.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

from bot.cli_base import EXIT_FAILURE, EXIT_OK, AddCommand, CliRefused, add_command, plain_command
from bot.config import Settings
from bot.errors import KontextError
from bot.i18n import t
from bot.ops.backup import BackupError, backup_sqlite, restore_sqlite
from storage import open_repository, redact_url, resolve_database_url


class OpsRefusal(KontextError, code="usage"):
    """An operator command used wrongly (or on a database it does not serve)."""


class HealthFailed(KontextError, code="unhealthy"):
    """The health check found the bot unhealthy."""


def _sqlite_paths(settings: Settings, command: str) -> tuple[Path, Path]:
    """The database file and the image folder of a SQLite URL; PostgreSQL is refused."""
    from storage.sqlite import SqliteRepository

    url = resolve_database_url(settings.database_url.get_secret_value())
    repo = open_repository(url)
    if not isinstance(repo, SqliteRepository):
        raise OpsRefusal(t("errors.ops.sqlite_only", url=redact_url(url), command=command))
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


def _health(args: argparse.Namespace, settings: Settings) -> int:
    import httpx

    if settings.http_port is None:
        raise CliRefused(OpsRefusal(t("errors.ops.no_port")))
    host = settings.http_host
    if host in {"0.0.0.0", "::", ""}:  # noqa: S104 - bound to every address: ask loopback
        host = "127.0.0.1"
    url = f"http://{host}:{settings.http_port}/healthz"
    try:
        answer = httpx.get(url, timeout=5.0)
    except httpx.HTTPError as err:
        raise HealthFailed(t("errors.ops.no_answer", url=url, error=type(err).__name__)) from err
    sys.stdout.write(answer.text.strip() + "\n")
    if answer.status_code != 200:
        raise HealthFailed(
            t(
                "errors.ops.unhealthy",
                url=url,
                status=answer.status_code,
                down=", ".join(_down(answer)),
            )
        )
    return EXIT_OK


def _down(answer: Any) -> list[str]:
    try:
        down = answer.json().get("down")
    except ValueError:
        return ["something"]
    return [str(d) for d in down] if isinstance(down, list) and down else ["something"]


def _doctor(args: argparse.Namespace, settings: Settings) -> int:
    import httpx

    from bot.ops.doctor import report, run_checks

    async def check() -> tuple[bool, str]:
        async with httpx.AsyncClient(follow_redirects=False) as http:
            checks = await run_checks(settings, http)
            ready = all(c.ok for c in checks if c.name in ("discord token", "database"))
            if ready:
                checks += await _discord_checks(settings, http)
            return report(checks)

    passed, text = asyncio.run(check())
    sys.stdout.write(text)
    return EXIT_OK if passed else EXIT_FAILURE


async def _discord_checks(settings: Settings, http: Any) -> list[Any]:
    """Registered commands up to date, and the bot's permissions in each server's configured
    channels: these need the command tree and the stored settings, so the app is built (not
    connected, nothing started)."""
    from bot.app import open_app
    from bot.discord.command_sync import scope_of, tree_digest
    from bot.discord.doctor import commands_check, permission_checks
    from bot.ops.doctor import Check, discord_get

    async def fetch(path: str) -> tuple[int, Any]:
        return await discord_get(http, settings, path)

    status, me = await fetch("/oauth2/applications/@me")
    if status != 200 or not isinstance(me, dict):
        return [Check(name="registered commands", ok=False, detail=f"HTTP {status} from Discord")]
    app_id, bot_id = int(me["id"]), int((me.get("bot") or {}).get("id") or me["id"])
    try:
        async with open_app(settings, sync_commands=False, serve=False) as app:
            await app.bot.prepare_commands()
            guild = settings.dev_guild_id
            scope = scope_of(app_id, guild)
            stored = await app.repo.command_digest(scope)
            checks = [commands_check(stored, await tree_digest(app.bot.tree, guild), scope=scope)]
            places: list[tuple[int, int, str]] = []
            for guild_id in await app.repo.guilds_with_data():
                config = await app.edits.guild_settings(guild_id)
                places += [(guild_id, c, "allowed channel") for c in config.allowed_channel_ids]
                if config.gallery_channel_id:
                    places.append((guild_id, config.gallery_channel_id, "gallery"))
                remix = await app.edits.list_remix_channels(guild_id)
                places += [(guild_id, r.channel_id, "remix channel") for r in remix]
            checks += await permission_checks(fetch, bot_id, places)
    except KontextError as err:
        return [Check(name="registered commands", ok=False, detail=err.user_message)]
    if not places:
        checks.append(
            Check(name="channel permissions", ok=None, detail="no server configured channels")
        )
    return checks


def _sync(args: argparse.Namespace, settings: Settings) -> int:
    from bot.app import ConfigurationError, register_commands

    try:
        count = asyncio.run(register_commands(settings))
    except ConfigurationError as err:
        raise CliRefused(err) from err
    sys.stdout.write(f"registered {count} commands\n")
    return EXIT_OK


OPS_COMMANDS: tuple[AddCommand, ...] = (
    add_backup,
    add_restore,
    plain_command(
        "health", "ask the running bot's /healthz (KONTEXT_HTTP_PORT); exit 0 when healthy", _health
    ),
    plain_command(
        "doctor", "check the setup: one line per check, exit 0 only when all pass", _doctor
    ),
    plain_command(
        "sync", "register the slash commands with Discord now (start does it on changes)", _sync
    ),
)
