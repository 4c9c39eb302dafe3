"""Gateway shards in the logs: each shard's connects, READY, resumes and disconnects with its
heartbeat latency, and every shard's latency once a minute. (``cogs.ops`` exports the
latencies to ``/metrics``; ``/healthz`` reads the shards' states from the operations core.)
A process that never connects (``kontext-bot worker``) logs nothing here."""

from __future__ import annotations

import logging
import math

from discord.ext import commands, tasks

from bot.discord.client import KontextBot

log = logging.getLogger(__name__)


def _shown(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms" if math.isfinite(seconds) else "?"


class ShardsCog(commands.Cog):
    def __init__(self, bot: KontextBot) -> None:
        self.bot = bot

    async def cog_unload(self) -> None:
        self.report.cancel()

    def _state(self, shard_id: int | None, state: str) -> None:
        shard = self.bot.get_shard(shard_id or 0)
        latency = _shown(shard.latency) if shard is not None else "?"
        log.info("shard %s %s (latency %s)", shard_id or 0, state, latency)

    @commands.Cog.listener()
    async def on_shard_connect(self, shard_id: int) -> None:
        if not self.report.is_running():
            self.report.start()
        self._state(shard_id, "connected")

    @commands.Cog.listener()
    async def on_shard_ready(self, shard_id: int) -> None:
        self._state(shard_id, "ready")

    @commands.Cog.listener()
    async def on_shard_resumed(self, shard_id: int) -> None:
        self._state(shard_id, "resumed")

    @commands.Cog.listener()
    async def on_shard_disconnect(self, shard_id: int) -> None:
        log.warning("shard %d disconnected", shard_id)

    @tasks.loop(minutes=1)
    async def report(self) -> None:
        shown = [f"{shard_id}: {_shown(seconds)}" for shard_id, seconds in self.bot.latencies]
        if shown:
            log.info("shard latencies %s", ", ".join(shown))


async def setup(bot: KontextBot) -> None:
    await bot.add_cog(ShardsCog(bot))
