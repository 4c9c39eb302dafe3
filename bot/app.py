"""The one place that builds the application from :class:`~bot.config.Settings`.

:func:`open_app` opens the shared resources (the HTTP client, the repository), builds the
providers, the job engine, the Discord delivery and the bot, and closes them again in reverse
order. ``kontext-bot run`` and the end-to-end tests both go through here, so the tests run
the very wiring that production runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Literal

import aiohttp
import discord
import httpx

from bot.clock import Clock, SystemClock
from bot.config import DatabaseUrl, Settings
from bot.creative.service import CreativeService
from bot.discord.client import KontextBot
from bot.discord.delivery import DiscordDelivery
from bot.discord.endpoints import point_discord_at
from bot.discord.operator import OperatorAlerts, RateLimitCounter, shard_states
from bot.edits import EditService
from bot.errors import KontextError
from bot.i18n import t
from bot.jobs.engine import JobEngine
from bot.jobs.limits import EngineConfig
from bot.media import MediaFetcher
from bot.ops.service import Operations
from bot.provider_status import key_setting
from bot.providers import CAPABILITIES, build_provider
from bot.providers.base import Provider
from storage import open_repository, resolve_database_url
from storage.sql import Repository

log = logging.getLogger(__name__)


#: ``run``: gateway and worker in one process; ``gateway``: Discord only, no provider calls;
#: ``worker``: provider work and REST posting, no gateway connection.
Role = Literal["run", "gateway", "worker"]


class ConfigurationError(KontextError, code="configuration"):
    """The settings cannot start the bot."""


LOGIN_REFUSED = t("errors.app.login_refused")


class DiscordUnavailable(KontextError, code="discord_unavailable"):
    """Discord refused the bot or could not be reached: nothing a retry here would fix."""


@dataclass
class App:
    settings: Settings
    http: httpx.AsyncClient
    repo: Repository
    providers: dict[str, Provider]
    engine: JobEngine
    delivery: DiscordDelivery
    edits: EditService
    bot: KontextBot
    ops: Operations


def configured_providers(settings: Settings) -> list[str]:
    """The providers with an API key, the default one first; refuses a missing default key."""
    names = [name for name in CAPABILITIES if settings.has_key(name)]
    if settings.provider not in CAPABILITIES:
        raise ConfigurationError(
            t(
                "errors.app.unknown_provider",
                name=repr(settings.provider),
                known=", ".join(sorted(CAPABILITIES)),
            )
        )
    if settings.provider not in names:
        raise ConfigurationError(
            t(
                "errors.app.provider_without_key",
                name=repr(settings.provider),
                key_env=key_setting(settings.provider),
            )
        )
    names.remove(settings.provider)
    return [settings.provider, *names]


@contextlib.asynccontextmanager
async def open_app(
    settings: Settings,
    *,
    clock: Clock | None = None,
    sync_commands: bool | Literal["force"] = True,
    serve: bool = True,
    engine_overrides: dict[str, Any] | None = None,
    worker_id: str | None = None,
    guild_ready_timeout: float = 2.0,
    role: Role = "run",
) -> AsyncIterator[App]:
    """Everything built and connected to storage; the bot is not logged in yet.

    The caller runs ``app.bot.start(token)`` (or the test harness logs it in); leaving the
    context closes the bot (which stops the engine), the providers, storage and the client.
    ``role`` ``"gateway"`` never starts the engine (it only queues and cancels); ``"worker"``
    starts it when the bot logs in and never syncs commands.
    """
    clock = clock or SystemClock()
    names = configured_providers(settings)
    point_discord_at(settings.discord_api_base, settings.discord_gateway_url)
    async with contextlib.AsyncExitStack() as stack:
        http = await stack.enter_async_context(
            httpx.AsyncClient(follow_redirects=False, timeout=httpx.Timeout(60.0, connect=10.0))
        )
        repo = open_repository(settings.database_url.get_secret_value())
        await repo.connect()
        stack.push_async_callback(repo.close)
        providers: dict[str, Provider] = {}
        for name in names:
            provider = build_provider(name, settings, http, clock)
            providers[name] = provider
            stack.push_async_callback(provider.aclose)
        result_hosts = {h for n in names for h in CAPABILITIES[n].result_hosts}
        fetcher = MediaFetcher.from_settings(http, settings, tuple(sorted(result_hosts)))
        capabilities = {name: providers[name].capabilities for name in names}
        delivery = DiscordDelivery(repo=repo, clock=clock, capabilities=CAPABILITIES)
        delivery.setup_elsewhere = role == "worker"
        delivery.engine_elsewhere = role == "gateway"
        overrides: dict[str, Any] = {"lease_seconds": settings.job_lease_seconds}
        overrides.update(engine_overrides or {})
        config = EngineConfig.from_settings(settings, **overrides)
        engine = JobEngine(
            repo,
            providers,
            delivery,
            clock=clock,
            config=config,
            fetcher=fetcher,
            worker_id=worker_id,
        )
        delivery.board.follow_queue(engine.queue_eta)
        edits = EditService(
            repo=repo,
            engine=engine,
            capabilities=capabilities,
            default_provider=settings.provider,
            clock=clock,
            creative=CreativeService(
                repo, clock, catalog=capabilities, default_provider=settings.provider
            ),
            refusals=delivery.modlog,
        )
        labels = {name: CAPABILITIES[name].label for name in names}
        ops = Operations(settings, repo, engine, labels, clock=clock)
        bot = KontextBot(
            settings=settings,
            edits=edits,
            delivery=delivery,
            engine=engine,
            events=engine.events,
            sync_commands=sync_commands if role != "worker" else False,
            guild_ready_timeout=guild_ready_timeout,
            commands_store=repo,
            ops=ops,
            serve=serve,
            start_engine=role != "gateway",
        )
        stack.push_async_callback(_close_bot, bot)
        ops.pauses.add_alert_sink(OperatorAlerts(bot, channel_id=settings.alert_channel_id))
        if role != "worker":  # a worker has no gateway shards to report
            ops.set_gateway_shards(lambda: shard_states(bot))
        ops.health.engine_expected = role != "gateway"
        rate_limits = RateLimitCounter(ops.metrics.discord_rate_limited)
        rate_limits.install()
        stack.callback(rate_limits.uninstall)
        if serve:
            await ops.start()
            stack.push_async_callback(ops.stop)
        yield App(settings, http, repo, providers, engine, delivery, edits, bot, ops)


async def register_commands(settings: Settings) -> int:
    """``kontext-bot sync``: log in, register the commands (whether or not they changed) and
    log out; nothing else starts."""
    token = settings.discord_token
    if token is None:
        raise ConfigurationError(t("errors.app.no_token"))
    async with open_app(settings, sync_commands="force", serve=False) as app:
        try:
            await app.bot.login(token.get_secret_value())  # runs setup_hook: the forced sync
        except discord.LoginFailure as err:
            raise DiscordUnavailable(LOGIN_REFUSED) from err
        return app.bot.synced_count


async def _close_bot(bot: KontextBot) -> None:
    if not bot.is_closed():
        await bot.close()


async def run(settings: Settings, role: Role = "run") -> None:
    """``kontext-bot run`` (or ``gateway``, ``worker``): connect and serve until stopped."""
    token = settings.discord_token
    if token is None:
        raise ConfigurationError(t("errors.app.no_token"))
    configured_providers(settings)  # no usable provider key: refuse before anything starts
    # Resolved once: a relative SQLite path would otherwise depend on the working folder.
    url = resolve_database_url(settings.database_url.get_secret_value())
    if role != "run" and not url.lower().startswith(("postgresql:", "postgres:")):
        raise ConfigurationError(t("errors.app.needs_postgres", role=role))
    settings = settings.model_copy(update={"database_url": DatabaseUrl(url)})
    log.info("database %s", settings.database_url)  # shown with its password masked
    async with open_app(settings, role=role) as app:
        log.info("starting as %s with providers %s", role, ", ".join(app.providers))
        loop = asyncio.get_running_loop()
        stopping: list[asyncio.Task[None]] = []
        stopped = asyncio.Event()

        def stop() -> None:
            stopped.set()
            stopping.append(loop.create_task(app.bot.close()))

        for sig in (signal.SIGTERM, signal.SIGINT):
            # Stop cleanly: the engine releases its leases, so a restart resumes at once.
            loop.add_signal_handler(sig, stop)
        try:
            if role == "worker":
                # Logged in over HTTP only: results and status edits go through REST.
                await app.bot.login(token.get_secret_value())
                log.info("worker %s is taking jobs", app.engine.worker_id)
                await stopped.wait()
            else:
                await app.bot.start(token.get_secret_value())
        except discord.LoginFailure as err:
            raise DiscordUnavailable(LOGIN_REFUSED) from err
        except discord.PrivilegedIntentsRequired as err:
            raise DiscordUnavailable(t("errors.app.no_intent")) from err
        except (aiohttp.ClientError, OSError) as err:
            raise DiscordUnavailable(
                t(
                    "errors.app.unreachable",
                    url=settings.discord_api_base,
                    error=type(err).__name__,
                )
            ) from err
        await asyncio.gather(*stopping)
