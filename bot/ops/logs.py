"""The one logging setup every command uses, and the job context log lines carry.

Every line has a UTC timestamp. ``KONTEXT_LOG_FORMAT=json`` writes one JSON object per line
(python-json-logger) with ``timestamp``, ``level``, ``logger``, ``message`` and, where they
apply, ``job_id``, ``guild_id``, ``user_id``, ``provider`` and ``duration_seconds``. The job
fields come from the job the engine binds to each job's task (:mod:`bot.logcontext`), so
nothing has to pass them around. The values of the secrets in the settings (the Discord
token, the API keys, a database password) are replaced by ``***`` in every line, whatever
logged them.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterable
from typing import TextIO

from pythonjsonlogger.json import JsonFormatter

from bot.logcontext import JobContext
from bot.text import escape_controls
from storage import scrub_password

_FIELDS = ("job_id", "guild_id", "user_id", "provider")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
HANDLER_NAME = "kontext"


def utc_time(record: logging.LogRecord) -> str:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
    return f"{stamp}.{int(record.msecs):03d}Z"


class TextFormatter(logging.Formatter):
    """``<UTC time> LEVEL logger: message [job=.. guild=.. user=.. provider=.. duration=..]``"""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return utc_time(record)

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        tags = [
            f"{n.removesuffix('_id')}={getattr(record, n)}" for n in _FIELDS if hasattr(record, n)
        ]
        duration = getattr(record, "duration_seconds", None)
        if isinstance(duration, int | float):
            tags.append(f"duration={duration:.2f}s")
        if not tags:
            return text
        first, _, rest = text.partition("\n")
        return f"{first} [{' '.join(tags)}]" + (f"\n{rest}" if rest else "")


class _Scrubbed(logging.Formatter):
    """Formats with ``inner``, then masks every secret value and the database password;
    text lines also get their control characters escaped (JSON escapes its own)."""

    def __init__(
        self, inner: logging.Formatter, secrets: Iterable[str], database_url: str | None
    ) -> None:
        super().__init__()
        self._inner = inner
        # Longest first, so a secret that contains another is masked whole.
        self._secrets = sorted({s for s in secrets if len(s) >= 4}, key=len, reverse=True)
        self._database_url = database_url

    def format(self, record: logging.LogRecord) -> str:
        text = self._inner.format(record)
        if isinstance(self._inner, TextFormatter):
            text = escape_controls(text, keep="\n")
        for secret in self._secrets:
            text = text.replace(secret, "***")
        if self._database_url:
            text = scrub_password(text, self._database_url)
        return text


def make_formatter(
    fmt: str, secrets: Iterable[str] = (), database_url: str | None = None
) -> logging.Formatter:
    """A formatter for "text" or "json" that masks ``secrets`` and the database password."""
    inner: logging.Formatter = (
        JsonFormatter(
            ["levelname", "name", "message"],
            timestamp=True,  # UTC, ISO 8601
            rename_fields={"levelname": "level", "name": "logger"},
        )
        if fmt == "json"
        else TextFormatter()
    )
    return _Scrubbed(inner, secrets, database_url)


def setup_logging(
    level: int | str,
    *,
    fmt: str = "text",
    secrets: Iterable[str] = (),
    database_url: str | None = None,
    stream: TextIO | None = None,
    quiet: Iterable[str] = (),
) -> logging.Handler:
    """Log to ``stream`` (stderr) in ``fmt`` ("text" or "json") through one root handler
    (named :data:`HANDLER_NAME`; a second call replaces the first one's); loggers named in
    ``quiet`` only show warnings and worse."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.set_name(HANDLER_NAME)
    handler.setFormatter(make_formatter(fmt, secrets, database_url))
    handler.addFilter(JobContext())
    root = logging.getLogger()
    remove_handler()
    root.addHandler(handler)
    root.setLevel(level if isinstance(level, int) else level.upper())
    for name in quiet:
        logging.getLogger(name).setLevel(logging.WARNING)
    return handler


def remove_handler() -> None:
    """Take away the handler :func:`setup_logging` installed (if any)."""
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == HANDLER_NAME]:
        root.removeHandler(old)
