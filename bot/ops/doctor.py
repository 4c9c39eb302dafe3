"""``kontext-bot doctor``: check a setup before (or while) running it, one line per check.

Discord is asked over its REST API with the bot token (who the bot is; the application's
privileged-intent flags against ``KONTEXT_MESSAGE_CONTENT``). The database is opened without
being created; free disk is measured where the image files go; the hosts images are
downloaded from must resolve. A provider's key is tried with its one cheap authenticated call
where the provider has one (Black Forest Labs' credits, Replicate's account); elsewhere it is
reported as set, not as valid: the first edit checks it, and a refused key pauses the provider
and tells the operator.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import httpx

from bot.clock import SystemClock
from bot.config import Settings
from bot.errors import KontextError
from bot.media import DISCORD_CDN_HOSTS
from bot.models import Frozen
from bot.provider_status import key_setting, provider_statuses
from bot.providers import CAPABILITIES
from storage import open_repository, redact_url, resolve_database_url
from storage.schema import latest_version

#: Application flags: the Message Content intent, for verified and unverified applications.
GATEWAY_MESSAGE_CONTENT = 1 << 18
GATEWAY_MESSAGE_CONTENT_LIMITED = 1 << 19
MIN_FREE_BYTES = 1 << 30
_ANSWER_LIMIT = 64 * 1024  # Discord's identity answers are small; never read more

Resolver = Callable[[str], Awaitable[object]]


class Check(Frozen):
    name: str
    ok: bool | None  # None: nothing that can be checked from here (said why)
    detail: str

    @classmethod
    def verdict(cls, name: str, problem: str | None, *, passed: str) -> Check:
        """Failed, saying ``problem``, when there is one; else passed, saying ``passed``."""
        if problem is not None:
            return cls(name=name, ok=False, detail=problem)
        return cls(name=name, ok=True, detail=passed)

    def line(self) -> str:
        mark = {True: "OK  ", False: "FAIL", None: "--  "}[self.ok]
        return f"{mark} {self.name}: {self.detail}"


async def _resolve(host: str) -> object:
    loop = asyncio.get_running_loop()
    return await asyncio.wait_for(loop.getaddrinfo(host, 443, type=socket.SOCK_STREAM), 5.0)


async def run_checks(
    settings: Settings, http: httpx.AsyncClient, *, resolve: Resolver = _resolve
) -> list[Check]:
    checks = await _discord(settings, http)
    checks += await _storage(settings)
    checks += await _providers(settings, http)
    checks.append(await _hosts(settings, resolve))
    return checks


# --- Discord ---------------------------------------------------------------------------------
async def discord_get(http: httpx.AsyncClient, settings: Settings, path: str) -> tuple[int, Any]:
    assert settings.discord_token is not None
    headers = {"Authorization": f"Bot {settings.discord_token.get_secret_value()}"}
    async with http.stream(
        "GET", f"{settings.discord_api_base}{path}", headers=headers, timeout=10.0
    ) as answer:
        body = b""
        async for chunk in answer.aiter_bytes():
            body += chunk
            if len(body) > _ANSWER_LIMIT:
                return answer.status_code, None
    try:
        return answer.status_code, json.loads(body)
    except ValueError:
        return answer.status_code, None


async def _discord(settings: Settings, http: httpx.AsyncClient) -> list[Check]:
    if settings.discord_token is None:
        return [Check(name="discord token", ok=False, detail="DISCORD_TOKEN is not set.")]
    try:
        status, me = await discord_get(http, settings, "/users/@me")
        if status == 401:
            return [
                Check(
                    name="discord token",
                    ok=False,
                    detail="Discord refused DISCORD_TOKEN: copy it again from the developer "
                    "portal (Bot → Reset Token).",
                )
            ]
        if status != 200 or not isinstance(me, dict):
            raise httpx.HTTPError(f"HTTP {status}")
        who = Check(
            name="discord token",
            ok=True,
            detail=f"the bot is {me.get('username')} ({me.get('id')})",
        )
        status, app = await discord_get(http, settings, "/oauth2/applications/@me")
    except httpx.HTTPError as err:
        return [
            Check(
                name="discord token",
                ok=False,
                detail=f"could not ask Discord at {settings.discord_api_base} ({err}): check "
                "the network and DISCORD_API_BASE.",
            )
        ]
    flags = app.get("flags") if status == 200 and isinstance(app, dict) else None
    if not isinstance(flags, int):
        intents = Check(
            name="privileged intents", ok=False, detail="Discord did not return the app's flags."
        )
    elif not settings.message_content:
        intents = Check(
            name="privileged intents",
            ok=True,
            detail="none needed (KONTEXT_MESSAGE_CONTENT is off)",
        )
    elif flags & (GATEWAY_MESSAGE_CONTENT | GATEWAY_MESSAGE_CONTENT_LIMITED):
        intents = Check(
            name="privileged intents", ok=True, detail="Message Content is enabled, as needed"
        )
    else:
        intents = Check(
            name="privileged intents",
            ok=False,
            detail="KONTEXT_MESSAGE_CONTENT=1 but the application's Message Content intent is "
            "off: enable it (developer portal, Bot → Privileged Gateway Intents) or unset "
            "KONTEXT_MESSAGE_CONTENT.",
        )
    return [who, intents]


# --- storage ---------------------------------------------------------------------------------
async def _storage(settings: Settings) -> list[Check]:
    from storage.sqlite import SqliteRepository

    url = resolve_database_url(settings.database_url.get_secret_value())
    try:
        repo = open_repository(url)
    except KontextError as err:
        return [Check(name="database", ok=False, detail=err.user_message)]
    checks: list[Check] = []
    if isinstance(repo, SqliteRepository):
        backend = "sqlite"
        checks.append(_disk(repo.data_dir))
        if not repo.path.exists():
            checks.insert(
                0,
                Check(
                    name="database",
                    ok=True,
                    detail=f"{repo.path} does not exist yet; `run` (or `migrate`) creates it",
                ),
            )
            return checks
    else:
        backend = "postgres"
        checks.append(
            Check(
                name="free disk",
                ok=None,
                detail="images are stored in PostgreSQL: watch the database server's disk",
            )
        )
    try:
        await repo.connect()  # applies pending migrations, as `run` would
    except KontextError as err:
        return [Check(name="database", ok=False, detail=err.user_message), *checks]
    try:
        version = await repo.schema_version()
        pauses = await repo.provider_pauses()
    finally:
        await repo.close()
    newest = latest_version(backend)
    checks.insert(
        0,
        Check(
            name="database",
            ok=version == newest,
            detail=f"{redact_url(url)} reachable, schema version {version} of {newest}",
        ),
    )
    for pause in pauses:
        checks.append(
            Check(
                name=f"provider {pause.provider}",
                ok=False,
                detail=f"paused ({pause.code}: {pause.detail or 'refused'}). Fix the key or the "
                "credits; the bot resumes it by itself once an edit goes through.",
            )
        )
    return checks


def _disk(folder: Path) -> Check:
    probe = folder
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    free = shutil.disk_usage(probe).free
    gib = free / (1 << 30)
    problem = (
        f"only {gib:.2f} GiB free at {probe} for the images: free some space or "
        "move the database elsewhere (KONTEXT_DATABASE_URL)."
        if free < MIN_FREE_BYTES
        else None
    )
    return Check.verdict("free disk", problem, passed=f"{gib:.1f} GiB free at {probe}")


# --- providers and hosts ---------------------------------------------------------------------
async def _providers(settings: Settings, http: httpx.AsyncClient) -> list[Check]:
    """Each configured provider's key, tried with its one cheap authenticated call where the
    provider has one (the same check as ``kontext-bot providers``)."""
    checks: list[Check] = []
    for status in await provider_statuses(settings, http, SystemClock()):
        name, label = status.name, status.caps.label
        if status.key == "missing":
            if name == settings.provider:
                checks.append(
                    Check(
                        name=f"provider {name}",
                        ok=False,
                        detail=f"KONTEXT_PROVIDER is {name} but {key_setting(name)} is not "
                        "set: set it, or choose a provider whose key you have.",
                    )
                )
            continue
        if status.key == "works":
            check = Check(name=f"provider {name}", ok=True, detail=f"key works: {status.detail}")
        elif status.key == "refused":
            check = Check(
                name=f"provider {name}",
                ok=False,
                detail=f"{status.detail} Put a working key in {key_setting(name)}.",
            )
        else:
            check = Check(
                name=f"provider {name}",
                ok=None,
                detail=f"key set; {label} documents no cheap authenticated call, so the first "
                "edit checks it (a refused key pauses the provider and alerts you)",
            )
        checks.append(check)
    return checks


def media_hosts(settings: Settings) -> list[str]:
    """Every host images are downloaded from: Discord's CDN, the configured providers' result
    hosts and ``KONTEXT_MEDIA_HOSTS``."""
    hosts: list[str] = list(DISCORD_CDN_HOSTS)
    for name, caps in CAPABILITIES.items():
        if settings.has_key(name):
            hosts += caps.result_hosts
    hosts += settings.media_hosts
    return list(dict.fromkeys(hosts))


async def _hosts(settings: Settings, resolve: Resolver) -> Check:
    hosts = media_hosts(settings)
    failed: list[str] = []
    for host in hosts:
        try:
            await resolve(host)
        except (OSError, TimeoutError):
            failed.append(host)
    problem = (
        f"cannot resolve {', '.join(failed)}: check DNS and the network (and KONTEXT_MEDIA_HOSTS)."
        if failed
        else None
    )
    return Check.verdict("media hosts", problem, passed=f"{', '.join(hosts)} resolve")


def report(checks: Sequence[Check]) -> tuple[bool, str]:
    """``(all passed, text)``: one line per check."""
    return all(c.ok is not False for c in checks), "".join(c.line() + "\n" for c in checks)
