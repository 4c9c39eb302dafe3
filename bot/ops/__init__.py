"""Operating the bot: health and metrics over HTTP, logs, provider pauses with operator alerts,
data retention and erasure, backups. Core code: nothing here imports ``discord``; the Discord
edge plugs in through the hooks of :class:`bot.ops.service.Operations`."""
