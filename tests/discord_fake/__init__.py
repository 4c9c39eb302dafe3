"""A fake Discord for end-to-end tests: see README.md beside this file."""

from __future__ import annotations

import warnings

# discord.py imports the stdlib ``audioop`` (voice), which warns on Python 3.11+; with the
# project's ``filterwarnings = error`` that would break collection. Import it once, quietly.
with warnings.catch_warnings():
    warnings.filterwarnings("ignore", "'audioop' is deprecated", DeprecationWarning)
    import discord  # noqa: F401

from .actors import Actor, InteractionHandle, png_file
from .models import FakeClock, Intent, Perm, StoredMessage
from .server import FakeDiscord
from .wire import RequestRecord, Violation
from .world import FileUpload

__all__ = [
    "Actor",
    "FakeClock",
    "FakeDiscord",
    "FileUpload",
    "Intent",
    "InteractionHandle",
    "Perm",
    "RequestRecord",
    "StoredMessage",
    "Violation",
    "png_file",
]
