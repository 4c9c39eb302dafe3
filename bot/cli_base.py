"""What :mod:`bot.cli` and the operator commands of :mod:`bot.cli_ops` share: the exit codes,
the refusal that exits with :data:`EXIT_USAGE`, and declaring a subcommand.
"""

from __future__ import annotations

import argparse
import functools
from collections.abc import Callable
from typing import Any, TypeAlias

from bot.config import Settings
from bot.errors import KontextError

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2


class CliRefused(Exception):
    """Wraps an error raised before any provider request, so it exits with 2."""

    def __init__(self, error: KontextError) -> None:
        super().__init__(str(error))
        self.error = error


#: What runs a subcommand: the parsed arguments and the settings in, the exit code out.
Handler = Callable[[argparse.Namespace, Settings], int]


def add_command(
    commands: argparse._SubParsersAction[Any], name: str, help: str, handler: Handler
) -> argparse.ArgumentParser:
    """Declare the subcommand ``name`` (``help`` is its line in ``--help``), run by ``handler``."""
    parser: argparse.ArgumentParser = commands.add_parser(name, help=help)
    parser.set_defaults(handler=handler)
    return parser


#: Declares one subcommand, with its options, among the parser's subcommands.
AddCommand: TypeAlias = "Callable[[argparse._SubParsersAction[Any]], object]"


def plain_command(name: str, help: str, handler: Handler) -> AddCommand:
    """Declares the subcommand ``name`` that takes no options of its own."""
    return functools.partial(add_command, name=name, help=help, handler=handler)
