"""The creative features' core: styles, member preferences, community settings and the one
resolver of what a request runs with (no discord import)."""
