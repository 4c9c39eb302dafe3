"""Gateway shards: each shard's state changes are logged with its heartbeat latency, every
shard's latency once a minute, and both go to the operations metrics and ``/healthz`` when
the bot has them. A process that never connects (``kontext-bot worker``) logs nothing here."""

from __future__ import annotations

import logging
import math

from discord.ext import commands, tasks

from bot.discord.client import KontextBot

log = logging.getLogger(__name__)


class ShardsCog(commands.Cog):
    def __init__(self, bot: KontextBot) -> None:
        self.bot = bot
        self._watching = False

    async def cog_unload(self) -> None:
        self.report.cancel()

    def connected(self) -> dict[int, bool]:
        """Whether each shard this process runs is connected (for ``/healthz``)."""
        states = {}
        for shard_id in self.bot.shard_ids or range(self.bot.shard_count or 0):
            shard = self.bot.get_shard(shard_id)
            states[shard_id] = shard is not None and not shard.is_closed()
        return states

    def _latency(self, shard_id: int | None) -> float | None:
        shard = self.bot.get_shard(shard_id or 0)
        if shard is None or math.isinf(shard.latency) or math.isnan(shard.latency):
            return None
        if self.bot.ops is not None:
            self.bot.ops.metrics.gateway_latency(shard.id, shard.latency)
        return shard.latency

    def _state(self, shard_id: int | None, state: str) -> None:
        latency = self._latency(shard_id)
        shown = "?" if latency is None else f"{latency * 1000:.0f} ms"
        log.info("shard %s %s (latency %s)", shard_id or 0, state, shown)

    @commands.Cog.listener()
    async def on_shard_connect(self, shard_id: int) -> None:
        if not self._watching:
            self._watching = True
            if self.bot.ops is not None:
                self.bot.ops.set_gateway_shards(self.connected)
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
        latencies = [
            f"{shard_id}: {latency * 1000:.0f} ms"
            for shard_id, latency in self.bot.latencies
            if self._latency(shard_id) is not None
        ]
        if latencies:
            log.info("shard latencies %s", ", ".join(latencies))


async def setup(bot: KontextBot) -> None:
    await bot.add_cog(ShardsCog(bot))
