"""Discord commands and listeners, one module per feature, each with ``async def setup(bot)``.

The client loads them by name (``bot.discord.client.EXTENSIONS``); no module imports a cog.
"""
