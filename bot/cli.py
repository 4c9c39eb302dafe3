"""The ``kontext-bot`` command line: ``run`` the Discord bot, or ``edit`` and ``imagine`` one
image without Discord.

Exit codes (scripts can rely on them):

* ``0``: the images were written; each path is printed on its own line.
* ``2``: refused before any request reached a provider: bad arguments, a missing or invalid
  image (or something that is not a regular file), an empty prompt or one over 4000
  characters, a seed outside the provider's range, an ``--out-dir`` that cannot be written, a
  request the provider cannot serve, a missing API key.
* ``1``: failed after talking to the provider (auth, credits, rate limit, moderation,
  timeout, provider errors, download problems) or while writing the files.

On failure exactly one line goes to stderr (what went wrong, what to do) and no file is
written. Text from outside (file names, provider messages) is printed with its control
characters escaped, so a hostile name cannot drive the terminal. Other logs (retries, say)
are shown only with ``-v`` (INFO) or ``-vv`` (DEBUG).

Adding a subcommand is a function that adds its parser and sets ``handler`` (see
:func:`_add_edit`); :func:`main` dispatches on it.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import stat
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

import httpx
from pydantic import ValidationError

from bot.cli_base import EXIT_FAILURE, EXIT_OK, EXIT_USAGE, CliRefused, add_command, plain_command
from bot.cli_ops import OPS_COMMANDS
from bot.clock import SystemClock
from bot.config import Settings
from bot.errors import KontextError
from bot.generate import GeneratedImage, generate
from bot.i18n import Text, t
from bot.images import MAX_IMAGE_BYTES, image_too_large, prepare_image, to_reference
from bot.media import MediaFetcher
from bot.models import MAX_REFERENCES, AspectRatio, OutputFormat
from bot.ops.logs import setup_logging
from bot.provider_status import ProviderStatus, describe, provider_statuses
from bot.providers import CAPABILITIES, build_provider
from bot.providers.base import GenerationRequest, ReferenceImage
from bot.text import check_prompt, escape_controls

log = logging.getLogger(__name__)

PROG = "kontext-bot"


class UsageError(KontextError, code="usage"):
    """Bad input caught before any provider request."""


class _Parser(argparse.ArgumentParser):
    """Argument errors as one line on stderr (no usage dump), exit 2."""

    def error(self, message: str) -> NoReturn:
        shown = escape_controls(" ".join(message.split()))
        self.exit(EXIT_USAGE, f"{self.prog}: {shown} (see {self.prog} --help)\n")


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} must be 1 or more")
    return value


def _num_images(text: str) -> int:
    value = _positive(text)
    if value > 4:
        raise argparse.ArgumentTypeError(f"{text} is more than 4")
    return value


def _add_generation_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--prompt", required=True, help="what to make or change")
    parser.add_argument(
        "--provider", choices=sorted(CAPABILITIES), help="default: KONTEXT_PROVIDER"
    )
    parser.add_argument(
        "--aspect-ratio",
        choices=[r.value for r in AspectRatio],
        help="default: closest to the first image (1:1 without images)",
    )
    parser.add_argument("--seed", type=_positive)
    parser.add_argument("--guidance", type=float, help="prompt adherence (provider's range)")
    parser.add_argument("--num-images", type=_num_images, default=1, help="1 to 4")
    parser.add_argument(
        "--output-format", choices=[f.value for f in OutputFormat], default=OutputFormat.PNG.value
    )
    parser.add_argument("--out-dir", required=True, type=Path, help="where to write the images")


def _add_edit(commands: argparse._SubParsersAction[_Parser]) -> None:
    parser = add_command(
        commands, "edit", "edit one or more images with a prompt", _generate_command
    )
    parser.add_argument(
        "--image",
        action="append",
        required=True,
        type=Path,
        help=f"a reference image (repeat for up to {MAX_REFERENCES})",
    )
    _add_generation_options(parser)


def _add_imagine(commands: argparse._SubParsersAction[_Parser]) -> None:
    parser = add_command(
        commands, "imagine", "make an image from a prompt alone", _generate_command
    )
    _add_generation_options(parser)
    parser.set_defaults(image=[])


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=PROG, description="Kontext Bot: FLUX.1 Kontext image editing.")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logs on stderr")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in (_add_run, _add_migrate, _add_edit, _add_imagine, _add_providers, *OPS_COMMANDS):
        add(commands)
    return parser


# -- run ------------------------------------------------------------------------------


def _add_run(commands: argparse._SubParsersAction[_Parser]) -> None:
    parser = commands.add_parser("run", help="run the Discord bot (needs DISCORD_TOKEN)")
    parser.set_defaults(handler=_run_command, role="run")
    parser = commands.add_parser(
        "gateway", help="serve Discord only; workers do the provider work (needs PostgreSQL)"
    )
    parser.set_defaults(handler=_run_command, role="gateway")
    parser = commands.add_parser(
        "worker", help="run queued jobs and post results over REST, no gateway (needs PostgreSQL)"
    )
    parser.set_defaults(handler=_run_command, role="worker")


def _run_command(args: argparse.Namespace, settings: Settings) -> int:
    from bot.app import ConfigurationError, run  # discord.py is imported only to run the bot

    if args.verbose == 0:
        logging.getLogger().setLevel(settings.log_level.upper())
        logging.getLogger("discord").setLevel(logging.WARNING)
    # The bot never joins voice channels: discord.py's warnings about voice libraries are noise.
    logging.getLogger("discord.client").addFilter(
        lambda record: "voice will NOT be supported" not in record.getMessage()
    )
    try:
        asyncio.run(run(settings, args.role))
    except ConfigurationError as err:
        raise CliRefused(err) from err
    return EXIT_OK


# -- migrate ----------------------------------------------------------------------------


def _migrate_command(args: argparse.Namespace, settings: Settings) -> int:
    import storage

    version = asyncio.run(storage.migrate(settings.database_url.get_secret_value()))
    sys.stdout.write(f"{settings.database_url}: schema version {version}\n")
    return EXIT_OK


_add_migrate = plain_command(
    "migrate", "create or upgrade the database at KONTEXT_DATABASE_URL", _migrate_command
)


# -- providers --------------------------------------------------------------------------


def _providers_command(args: argparse.Namespace, settings: Settings) -> int:
    async def check() -> list[ProviderStatus]:
        async with httpx.AsyncClient(follow_redirects=False) as client:
            return await provider_statuses(settings, client, SystemClock())

    statuses = asyncio.run(check())
    configured = [s for s in statuses if s.key != "missing"]
    if not configured:
        raise CliRefused(
            UsageError(t("errors.cli.no_key", keys=", ".join(s.detail for s in statuses)))
        )
    for status in configured:
        sys.stdout.write("\n".join(describe(status)) + "\n")
    missing = [f"{s.name} ({s.detail})" for s in statuses if s.key == "missing"]
    if missing:
        sys.stdout.write(f"not configured: {', '.join(missing)}\n")
    return EXIT_FAILURE if any(s.key == "refused" for s in configured) else EXIT_OK


_add_providers = plain_command(
    "providers",
    "list the configured providers, what they can do, and test each key",
    _providers_command,
)


# -- edit / imagine ---------------------------------------------------------------------


def _kind(mode: int) -> Text:
    if stat.S_ISDIR(mode):
        return t("errors.cli.kind.folder")
    if stat.S_ISFIFO(mode):
        return t("errors.cli.kind.pipe")
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return t("errors.cli.kind.device")
    if stat.S_ISSOCK(mode):
        return t("errors.cli.kind.socket")
    return t("errors.cli.kind.other")


def read_image_file(path: Path, cap: int = MAX_IMAGE_BYTES) -> bytes:
    """The bytes of the regular file at ``path``, refusing anything else or more than ``cap``.

    The file is opened without blocking (a named pipe would otherwise wait for a writer) and
    judged by ``fstat`` of that open file, so it cannot be swapped between check and read; at
    most ``cap + 1`` bytes are read, whatever the file grows to meanwhile.
    """
    shown = escape_controls(str(path))
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY)
    except FileNotFoundError:
        raise UsageError(t("errors.cli.no_file", path=shown)) from None
    except OSError as err:
        raise UsageError(t("errors.cli.unreadable", path=shown, error=str(err.strerror))) from None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode) or info.st_size > cap:
        os.close(fd)
        if info.st_size > cap and stat.S_ISREG(info.st_mode):
            raise UsageError(
                t(
                    "errors.cli.file_refused",
                    path=shown,
                    why=image_too_large(info.st_size, cap).text,
                )
            )
        kind = _kind(info.st_mode)
        raise UsageError(t("errors.cli.not_a_file", path=shown, kind=kind))
    with os.fdopen(fd, "rb", buffering=0) as handle:
        chunks: list[bytes] = []
        left = cap + 1
        try:
            while left > 0:
                chunk = handle.read(min(left, 1024 * 1024))
                if not chunk:
                    break
                chunks.append(chunk)
                left -= len(chunk)
        except OSError as err:
            raise UsageError(
                t("errors.cli.unreadable", path=shown, error=str(err.strerror))
            ) from None
    return b"".join(chunks)


async def _read_references(paths: Sequence[Path], max_side: int | None) -> list[ReferenceImage]:
    if len(paths) > MAX_REFERENCES:
        raise UsageError(t("errors.cli.too_many_images", most=MAX_REFERENCES, count=len(paths)))
    references = []
    for path in paths:
        data = await asyncio.to_thread(read_image_file, path)
        try:
            prepared = await prepare_image(data, max_side=max_side)
        except KontextError as err:
            raise UsageError(
                t("errors.cli.file_refused", path=escape_controls(str(path)), why=err.text)
            ) from err
        references.append(to_reference(prepared))
    return references


def _build_request(args: argparse.Namespace, references: list[ReferenceImage]) -> GenerationRequest:
    prompt = check_prompt(args.prompt)
    try:
        return GenerationRequest(
            prompt=prompt,
            references=tuple(references),
            aspect_ratio=AspectRatio(args.aspect_ratio) if args.aspect_ratio else None,
            seed=args.seed,
            guidance=args.guidance,
            output_format=OutputFormat(args.output_format),
            num_images=args.num_images,
        )
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise UsageError(t("errors.cli.invalid", field=where, error=first["msg"])) from None


def _prepare_out_dir(out_dir: Path) -> list[Path]:
    """Create ``out_dir`` and prove a file can be made in it, before any provider is paid.

    Returns the folders it created (deepest last), so a run that writes nothing removes them.
    """
    shown = escape_controls(str(out_dir))
    missing = []
    for folder in (out_dir, *out_dir.parents):
        if folder.exists() or folder.is_symlink():
            break
        missing.append(folder)
    missing.reverse()
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        # A real file, not os.access: root passes every permission check, and a read-only
        # file system or a full disk only shows when something is written.
        with tempfile.NamedTemporaryFile(dir=out_dir, prefix=".kontext-bot-probe-") as probe:
            probe.write(b"x")
            probe.flush()
    except OSError as err:
        _remove_empty(missing)
        why: Text | str = (
            t("errors.cli.not_a_folder")
            if isinstance(err, (FileExistsError, NotADirectoryError))
            else (err.strerror or type(err).__name__)
        )
        raise UsageError(t("errors.cli.out_dir", path=shown, why=why)) from None
    return missing


def _remove_empty(folders: Sequence[Path]) -> None:
    for folder in reversed(folders):
        try:
            folder.rmdir()
        except OSError:
            return


def _write(images: list[GeneratedImage], out_dir: Path) -> list[Path]:
    """Write every image, never overwriting; names are ``<UTC time>-<n>.<ext>``.

    All or nothing: if one write fails, the files already written are removed again.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    written: list[Path] = []
    try:
        for number, image in enumerate(images, start=1):
            suffix = 0
            while True:
                tail = f"-{suffix}" if suffix else ""
                path = out_dir / f"{stamp}-{number}{tail}.{image.extension}"
                try:
                    handle = path.open("xb")
                except FileExistsError:
                    suffix += 1
                    continue
                written.append(path)
                with handle:
                    handle.write(image.data)
                break
    except OSError:
        for path in written:
            path.unlink(missing_ok=True)
        raise
    return written


async def _generate_async(args: argparse.Namespace, settings: Settings) -> list[GeneratedImage]:
    name = args.provider or settings.provider
    caps = CAPABILITIES.get(name)
    if caps is None:
        raise CliRefused(
            UsageError(
                t("errors.provider.unknown", name=repr(name), known=", ".join(sorted(CAPABILITIES)))
            )
        )
    try:
        references = await _read_references(args.image, caps.max_reference_side)
        request = _build_request(args, references)
    except KontextError as err:
        raise CliRefused(err) from err
    clock = SystemClock()
    async with httpx.AsyncClient(follow_redirects=False) as client:
        provider = build_provider(name, settings, client, clock)
        try:
            provider.check(request)
        except KontextError as err:
            raise CliRefused(err) from err
        fetcher = MediaFetcher.from_settings(client, settings, caps.result_hosts)
        try:
            return await generate(
                provider,
                request,
                fetcher=fetcher,
                clock=clock,
                deadline_seconds=settings.job_deadline_seconds,
            )
        finally:
            await provider.aclose()


def _generate_command(args: argparse.Namespace, settings: Settings) -> int:
    try:
        created = _prepare_out_dir(args.out_dir)
    except UsageError as err:
        raise CliRefused(err) from err
    paths: list[Path] = []
    try:
        images = asyncio.run(_generate_async(args, settings))
        for index, image in enumerate(images, start=1):
            if image.nsfw:
                log.warning("image %d was flagged NSFW by the provider", index)
        try:
            paths = _write(images, args.out_dir)
        except OSError as err:
            shown = escape_controls(str(args.out_dir))
            _fail(f"could not write to {shown}: {err.strerror or err}. Check the folder.")
            return EXIT_FAILURE
    finally:
        if not paths:
            _remove_empty(created)
    for path in paths:
        sys.stdout.write(f"{escape_controls(str(path))}\n")
    return EXIT_OK


# -- entry point ------------------------------------------------------------------------


def _fail(message: str) -> None:
    """One line on stderr; foreign text in it (file names, provider words) is escaped."""
    sys.stderr.write(f"{PROG}: {escape_controls(' '.join(message.split()))}\n")


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as done:  # --help, or a usage error already reported in one line
        return done.code if isinstance(done.code, int) else EXIT_USAGE
    try:
        settings = Settings()
    except ValidationError as err:
        first = err.errors()[0]
        _fail(f"invalid setting {'.'.join(str(p) for p in first['loc'])}: {first['msg']}.")
        return EXIT_USAGE
    level = {0: logging.ERROR, 1: logging.INFO}.get(args.verbose, logging.DEBUG)
    setup_logging(
        level,
        fmt=settings.log_format,
        secrets=settings.secret_values(),
        database_url=settings.database_url.get_secret_value(),
    )
    if args.verbose < 2:
        logging.getLogger("httpx").setLevel(max(level, logging.WARNING))
    try:
        code: int = args.handler(args, settings)
    except CliRefused as refused:
        _fail(refused.error.user_message)
        return EXIT_USAGE
    except KontextError as err:
        log.debug("failed", exc_info=True)
        _fail(err.user_message)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        _fail("interrupted; nothing was written.")
        return 130
    except Exception as err:
        log.debug("unexpected failure", exc_info=True)
        _fail(f"unexpected error ({type(err).__name__}); run with -vv for details.")
        return EXIT_FAILURE
    return code
