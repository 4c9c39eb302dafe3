"""The ``commands.AutoShardedBot`` subclass (one or more gateway shards per process). It
builds nothing itself: :mod:`bot.app` hands it its services as typed attributes.
``setup_hook`` loads the cogs by name (each registers its own commands, listeners and
buttons), registers the commands with Discord when they changed (:mod:`.command_sync`) and
starts the job engine (not on a gateway-only process); ``before_identify_hook`` paces
IDENTIFYs by Discord's ``max_concurrency``; ``close`` stops what ``setup_hook`` started, in
reverse order.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Literal, Protocol, cast

import discord
from discord.ext import commands

from bot.config import Settings
from bot.edits import EditService
from bot.jobs.events import EventSink
from bot.shards import IdentifyPacer

from .command_sync import DigestStore, guild_only_everywhere, sync_if_changed
from .delivery import DiscordDelivery
from .mentions import NO_MENTIONS
from .translator import CatalogTranslator
from .views import ButtonCatalog, JobButton

if TYPE_CHECKING:
    from bot.ops.service import Operations

log = logging.getLogger(__name__)

#: The extensions, loaded in this order (and unloaded in reverse): one module per feature.
EXTENSIONS: tuple[str, ...] = (
    "cogs.error_handler",  # the one error handler; answers unknown buttons and forms
    "cogs.edit",  # /edit, /imagine, "Edit image", the Edit button and the prompt modals
    "cogs.results",  # Reroll, Info, Delete, Cancel
    "cogs.kontext",  # /kontext queue | cancel | usage | help, /kontext-admin settings
    "cogs.remix",  # replies, remix channels, /kontext-admin remix
    "cogs.history",  # History, Undo, "Edit history", /kontext history
    "cogs.gallery",  # Share and ⭐ reactions
    "cogs.batches",  # the pick buttons under a batch
    "cogs.creative",  # /kontext prefs; /kontext-admin style | blocklist | tier | creative
    "cogs.community",  # /kontext-admin modlog
    "cogs.ops",  # operator alerts, /kontext-admin resume, /kontext forget-me, servers, gateway
    "cogs.shards",  # each gateway shard's state and latency in the logs and metrics
)


class EngineControl(Protocol):
    """What the bot's lifecycle needs from the job engine."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


class EventSource(Protocol):
    def add(self, sink: EventSink) -> None: ...

    def remove(self, sink: EventSink) -> None: ...


def intents_for(settings: Settings) -> discord.Intents:
    """The default intents plus guild messages; Message Content only when asked for."""
    intents = discord.Intents.default()
    intents.guild_messages = True
    intents.message_content = settings.message_content
    return intents


class KontextGroup(discord.app_commands.Group):
    """``/kontext``: the cogs add their subcommands to it while they are loaded."""

    def __init__(self) -> None:
        super().__init__(name="kontext", description="Kontext settings and queue")

    async def interaction_check(self, interaction: discord.Interaction[discord.Client], /) -> bool:
        """Everything but ``help`` needs a server (settings, queue and usage are per server)."""
        command = interaction.command
        if interaction.guild_id is None and (command is None or command.name != "help"):
            raise discord.app_commands.NoPrivateMessage()
        return True


class AdminGroup(discord.app_commands.Group):
    """``/kontext-admin``: the server managers' commands. Registered with Manage Server as
    the default member permission, so Discord shows it to nobody else (the services still
    check Manage Server on every change)."""

    def __init__(self) -> None:
        super().__init__(
            name="kontext-admin",
            description="Kontext settings for server managers",
            default_permissions=discord.Permissions(manage_guild=True),
            guild_only=True,
        )


class KontextBot(commands.AutoShardedBot):
    settings: Settings
    edits: EditService
    delivery: DiscordDelivery
    engine: EngineControl
    events: EventSource
    kontext_group: KontextGroup
    admin_group: AdminGroup
    ops: Operations | None

    def __init__(
        self,
        *,
        settings: Settings,
        edits: EditService,
        delivery: DiscordDelivery,
        engine: EngineControl,
        events: EventSource,
        sync_commands: bool | Literal["force"] = True,
        commands_store: DigestStore,
        guild_ready_timeout: float = 2.0,
        ops: Operations | None = None,
        serve: bool = True,
        start_engine: bool = True,
    ) -> None:
        # Unset: every shard (discord.py's default); the stubs do not allow None.
        shards: dict[str, Any] = (
            {"shard_ids": list(settings.shard_ids)} if settings.shard_ids else {}
        )
        super().__init__(
            shard_count=settings.shard_count,
            # Memory grows with servers, not members: no feature needs the member list.
            member_cache_flags=discord.MemberCacheFlags.none(),
            chunk_guilds_at_startup=False,
            guild_ready_timeout=guild_ready_timeout,
            command_prefix=commands.when_mentioned,
            intents=intents_for(settings),
            help_command=None,
            allowed_mentions=NO_MENTIONS,
            max_messages=1000,
            **shards,
        )
        self.settings = settings
        self.edits = edits
        self.delivery = delivery
        self.engine = engine
        self.events = events
        self.sync_commands = sync_commands
        self.start_engine = start_engine
        self.pacer: IdentifyPacer | None = None
        self.kontext_group = KontextGroup()
        self.admin_group = AdminGroup()
        self.commands_store = commands_store
        self.ops = ops
        self.serve = serve  # False: register the commands and serve nothing (kontext-bot sync)
        self.synced_count = 0  # commands registered by the last sync (0: none was needed)
        self._engine_started = False
        self._listening = False
        self._logged_in = False

    @property
    def buttons(self) -> ButtonCatalog:
        return self.delivery.views

    def add_buttons(self, *classes: type[JobButton]) -> None:
        """Register a cog's restart-proof buttons (call from its ``setup``)."""
        self.add_dynamic_items(*classes)
        self.buttons.register(*classes)

    def remove_buttons(self, *classes: type[JobButton]) -> None:
        self.buttons.unregister(*classes)
        self.remove_dynamic_items(*classes)

    async def prepare_commands(self) -> None:
        """Load the extensions and build the command tree, worded in every language the
        catalog speaks (no connection needed)."""
        await self.tree.set_translator(CatalogTranslator())
        for name in EXTENSIONS:
            await self.load_extension(name)
        self.tree.add_command(self.kontext_group)
        self.tree.add_command(self.admin_group)
        guild_only_everywhere(self.tree)

    async def setup_hook(self) -> None:
        self.delivery.bind(self)
        await self.prepare_commands()
        if self.sync_commands:
            await self._sync()
        if not self.serve:
            return
        self.events.add(self.delivery.on_event)
        self._listening = True
        if self.start_engine:
            await self.engine.start()
            self._engine_started = True

    async def before_identify_hook(self, shard_id: int | None, *, initial: bool = False) -> None:
        """IDENTIFY as fast as Discord's ``max_concurrency`` allows (discord.py's default
        waits 5 s before every shard but the first)."""
        if self.pacer is None:
            limits = await self.fetch_session_start_limits()
            self.pacer = IdentifyPacer(limits.max_concurrency)
        await self.pacer.wait(shard_id or 0)

    async def _sync(self) -> None:
        """Register the commands when they changed since the last registration (or always
        with ``sync_commands="force"``): never a blind overwrite on every start."""
        synced = await sync_if_changed(
            self.tree,
            self.commands_store,
            application_id=self.application_id,
            guild_id=self.settings.dev_guild_id,
            now=self.delivery.clock.now(),
            force=self.sync_commands == "force",
        )
        self.synced_count = synced or 0

    async def on_ready(self) -> None:
        user = self.user
        log.info(
            "connected as %s (%s) to %d guilds", user, user.id if user else "?", len(self.guilds)
        )

    async def close(self) -> None:
        """Stop the engine first (no delivery may start on a closing connection), then the
        status updates, the extensions and the connection; each step runs even if one before
        failed."""
        try:
            try:
                if self._engine_started:
                    self._engine_started = False
                    await self.engine.stop()
            finally:
                if self._listening:
                    self._listening = False
                    self.events.remove(self.delivery.on_event)
            await self.delivery.close()
            self.tree.remove_command(self.kontext_group.name)
            self.tree.remove_command(self.admin_group.name)
            for name in reversed(list(self.extensions)):
                await self.unload_extension(name)
        finally:
            if self._logged_in:
                await super().close()
            else:  # built but never logged in (kontext-bot doctor): the sharded close would fail
                await self.http.close()

    async def login(self, token: str) -> None:
        self._logged_in = True
        await super().login(token)


def bot_of(interaction: discord.Interaction[Any]) -> KontextBot:
    """The bot an interaction reached (every interaction of this application reaches one)."""
    return cast(KontextBot, interaction.client)
