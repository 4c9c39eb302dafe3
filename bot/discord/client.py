"""The ``commands.Bot`` subclass. It builds nothing itself: :mod:`bot.app` hands it its
services as typed attributes. ``setup_hook`` loads the cogs by name (each registers its own
commands, listeners and buttons), syncs the commands and starts the job engine; ``close``
stops what ``setup_hook`` started, in reverse order.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol, cast

import discord
from discord.ext import commands

from bot.config import Settings
from bot.edits import EditService
from bot.jobs.events import EventSink

from .delivery import DiscordDelivery
from .mentions import NO_MENTIONS
from .views import ButtonCatalog, JobButton

log = logging.getLogger(__name__)

#: The extensions, loaded in this order (and unloaded in reverse): one module per feature.
EXTENSIONS: tuple[str, ...] = (
    "cogs.error_handler",  # the one error handler; answers unknown buttons and forms
    "cogs.edit",  # /edit, /imagine, "Edit image", the Edit button and the prompt modals
    "cogs.results",  # Reroll, Info, Delete, Cancel
    "cogs.kontext",  # /kontext settings | queue | cancel | usage | help
    "cogs.remix",  # replies, remix channels, /kontext remix
    "cogs.history",  # History, Undo, "Edit history", /kontext history
    "cogs.gallery",  # Share and ⭐ reactions
    "cogs.batches",  # the pick buttons under a batch
    "cogs.creative",  # /kontext prefs | style | blocklist | tier | creative
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


class KontextBot(commands.Bot):
    settings: Settings
    edits: EditService
    delivery: DiscordDelivery
    engine: EngineControl
    events: EventSource
    kontext_group: KontextGroup

    def __init__(
        self,
        *,
        settings: Settings,
        edits: EditService,
        delivery: DiscordDelivery,
        engine: EngineControl,
        events: EventSource,
        sync_commands: bool = True,
        guild_ready_timeout: float = 2.0,
    ) -> None:
        super().__init__(
            guild_ready_timeout=guild_ready_timeout,
            command_prefix=commands.when_mentioned,
            intents=intents_for(settings),
            help_command=None,
            allowed_mentions=NO_MENTIONS,
            max_messages=1000,
        )
        self.settings = settings
        self.edits = edits
        self.delivery = delivery
        self.engine = engine
        self.events = events
        self.sync_commands = sync_commands
        self.kontext_group = KontextGroup()
        self._engine_started = False

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

    async def setup_hook(self) -> None:
        self.delivery.bind(self)
        for name in EXTENSIONS:
            await self.load_extension(name)
        self.tree.add_command(self.kontext_group)
        if self.sync_commands:
            await self._sync()
        self.events.add(self.delivery.on_event)
        await self.engine.start()
        self._engine_started = True

    async def _sync(self) -> None:
        guild_id = self.settings.dev_guild_id
        if guild_id:
            guild = discord.Object(guild_id)
            self.tree.copy_global_to(guild=guild)
            synced = await self.tree.sync(guild=guild)
            log.info("synced %d commands to guild %d", len(synced), guild_id)
        else:
            synced = await self.tree.sync()
            log.info("synced %d global commands", len(synced))

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
            if self._engine_started:
                self._engine_started = False
                try:
                    await self.engine.stop()
                finally:
                    self.events.remove(self.delivery.on_event)
            await self.delivery.close()
            self.tree.remove_command(self.kontext_group.name)
            for name in reversed(list(self.extensions)):
                await self.unload_extension(name)
        finally:
            await super().close()


def bot_of(interaction: discord.Interaction[Any]) -> KontextBot:
    """The bot an interaction reached (every interaction of this application reaches one)."""
    return cast(KontextBot, interaction.client)
