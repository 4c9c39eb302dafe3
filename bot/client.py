"""The ``commands.Bot`` subclass. It builds nothing itself: :mod:`bot.app` hands it its
services as typed attributes (STYLE §1). ``setup_hook`` adds the cogs, registers the
restart-proof buttons, syncs the commands and starts the job engine; ``close`` stops what
``setup_hook`` started, in reverse order.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Protocol

import discord
from discord.ext import commands

from bot.config import Settings
from bot.discord_delivery import DiscordDelivery
from bot.iterate import IterateService
from bot.jobs.events import EventSink
from bot.kontext_service import KontextService
from bot.mentions import NO_MENTIONS
from cogs.buttons import DYNAMIC_ITEMS, ModalSubmissions
from cogs.edit import EditCog
from cogs.errors import ErrorHandler
from cogs.history import HISTORY_ITEMS, Gallery, HistoryCog
from cogs.kontext import KontextCog
from cogs.remix import RemixCog

log = logging.getLogger(__name__)

#: The cogs, added in this order (and removed in reverse). An explicit list rather than
#: extensions: ``load_extension`` re-imports a module, which would give the cogs' classes a
#: second identity beside the one other modules imported.
COGS: tuple[Callable[[KontextBot], commands.Cog], ...] = (
    ErrorHandler,
    ModalSubmissions,
    EditCog,
    KontextCog,
    RemixCog,  # replies and remix channels (issue 7)
    HistoryCog,  # the "Edit history" menu and ⭐ reactions (issue 7)
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


class KontextBot(commands.Bot):
    settings: Settings
    kontext: KontextService
    delivery: DiscordDelivery
    iterate: IterateService
    gallery: Gallery
    engine: EngineControl
    events: EventSource

    def __init__(
        self,
        *,
        settings: Settings,
        kontext: KontextService,
        delivery: DiscordDelivery,
        engine: EngineControl,
        events: EventSource,
        sync_commands: bool = True,
        guild_ready_timeout: float = 2.0,
        iterate: IterateService | None = None,
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
        self.kontext = kontext
        self.delivery = delivery
        self.iterate = iterate or IterateService(kontext)
        self.gallery = Gallery(self)
        self.engine = engine
        self.events = events
        self.sync_commands = sync_commands
        self._engine_started = False

    async def setup_hook(self) -> None:
        self.delivery.bind(self)
        for make in COGS:
            await self.add_cog(make(self))
        self.add_dynamic_items(*DYNAMIC_ITEMS, *HISTORY_ITEMS)
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
        status updates, the cogs and the connection; each step runs even if one before failed."""
        try:
            if self._engine_started:
                self._engine_started = False
                try:
                    await self.engine.stop()
                finally:
                    self.events.remove(self.delivery.on_event)
            await self.delivery.close()
            for name in reversed(list(self.cogs)):
                await self.remove_cog(name)
        finally:
            await super().close()
