"""The command line's exit codes and the refusal that exits with :data:`EXIT_USAGE`.

Shared by :mod:`bot.cli` and the operator commands of :mod:`bot.cli_ops`, so neither imports
the other's internals.
"""

from __future__ import annotations

from bot.errors import KontextError

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2


class CliRefused(Exception):
    """Wraps an error raised before any provider request, so it exits with 2."""

    def __init__(self, error: KontextError) -> None:
        super().__init__(str(error))
        self.error = error
