"""Kontext Bot: a Discord bot that edits images with the FLUX.1 Kontext models."""

__version__ = "0.1.0"
