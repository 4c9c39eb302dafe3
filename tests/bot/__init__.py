"""End-to-end and unit tests of the Discord front end."""

# discord.py warns on import under Python 3.11 (audioop); the fake's package quiets that once.
import tests.discord_fake  # noqa: F401
