"""The Discord side of operating the bot: telling the operator, gateway health, 429s.

* :class:`OperatorAlerts` is an alert sink of the provider pauses: it DMs the application's
  owner (or, for a team application, the team's owner and members as discord.py reports
  them) and/or posts in ``KONTEXT_ALERT_CHANNEL_ID``. The pause service calls it once per
  pause; each message pings nobody and escapes what the provider said.
* :func:`shard_states` tells ``/healthz`` which gateway shards are connected.
* :class:`RateLimitCounter` counts Discord REST 429s for ``/metrics``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import discord

from bot.ops.pauses import OperatorAlert

from . import render
from .mentions import NO_MENTIONS

log = logging.getLogger(__name__)


async def operator_ids(client: discord.Client) -> list[int]:
    """Who operates the application: its owner, or its team's owner and members."""
    info = await client.application_info()
    if info.team is None:
        return [info.owner.id]
    ids = [info.team.owner_id] if info.team.owner_id else []
    ids += [member.id for member in info.team.members if not member.bot]
    return list(dict.fromkeys(ids))


class OperatorAlerts:
    """Sends each :class:`OperatorAlert` to the operators by DM and/or to the alert channel."""

    def __init__(self, client: discord.Client, *, channel_id: int | None, dm: bool = True) -> None:
        self.client = client
        self.channel_id = channel_id
        self.dm = dm
        self.sent = 0  # messages delivered (for tests and the curious)

    async def __call__(self, alert: OperatorAlert) -> None:
        text = render.operator_alert_text(alert)
        if self.channel_id is not None:
            channel = self.client.get_partial_messageable(self.channel_id)
            await self._send(channel, text, f"channel {self.channel_id}")
        if not self.dm:
            return
        try:
            people = await operator_ids(self.client)
        except discord.HTTPException as err:
            log.warning("could not learn who operates the application: %s", err)
            return
        for user_id in people:
            try:
                dm = await self.client.create_dm(discord.Object(user_id))
            except discord.HTTPException as err:
                log.warning("could not open a DM with operator %d: %s", user_id, err)
                continue
            await self._send(dm, text, f"a DM to operator {user_id}")

    async def _send(self, where: discord.abc.Messageable, text: str, what: str) -> None:
        try:
            await where.send(text, allowed_mentions=NO_MENTIONS)
        except discord.HTTPException as err:
            log.warning("could not send the operator alert to %s: %s", what, err)
        else:
            self.sent += 1


def shard_states(client: discord.Client) -> dict[int, bool]:
    """Each shard this process runs and whether its gateway connection is up."""
    if isinstance(client, discord.AutoShardedClient):
        return {sid: not shard.is_closed() for sid, shard in client.shards.items()}
    return {client.shard_id or 0: client.is_ready() and not client.is_closed()}


class RateLimitCounter(logging.Handler):
    """Calls ``count()`` for every REST answer 429 that discord.py meets.

    discord.py waits out a 429 inside its HTTP client and offers no event or hook for it;
    the one signal it gives is a warning on its ``discord.http`` logger, logged exactly once
    per 429 ("... responded with 429 ..."). Listening to that logger counts them without
    replacing or patching the client. The logger is the process's, so this counts every
    client in the process (one bot per process outside the tests). With the ``discord``
    loggers set above WARNING the record is dropped before any handler sees it.
    """

    LOGGER = "discord.http"

    def __init__(self, count: Callable[[], None]) -> None:
        super().__init__(level=logging.WARNING)
        self.count = count

    def emit(self, record: logging.LogRecord) -> None:
        if "responded with 429" in str(record.msg):
            self.count()

    def install(self) -> None:
        logging.getLogger(self.LOGGER).addHandler(self)

    def uninstall(self) -> None:
        logging.getLogger(self.LOGGER).removeHandler(self)
