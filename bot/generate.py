"""One generation from request to checked image bytes, without persistence (the CLI's path).

The job engine performs the same steps with a stored state between each (so a restart polls a
saved handle instead of submitting again): check → submit → poll with :func:`poll_delay`
until finished or the deadline → download every output at once → check each is an image.

One deadline, measured on the injected clock, covers all of it: a provider that holds the
submit open or trickles its answer is cut off there. A 429 whose ``Retry-After`` is short
(at most :data:`MAX_RATE_WAIT` and before the deadline) is waited out and the call repeated:
a 429 means the provider took nothing, so repeating it cannot bill twice.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

from bot.clock import Clock, within
from bot.i18n import t
from bot.images import ImageRejected, prepare_image
from bot.media import Downloader, DownloadFailed, DownloadRefused, result_problem
from bot.providers.base import (
    Finished,
    GenerationRequest,
    OutputImage,
    Pending,
    Provider,
    Submitted,
)
from bot.providers.errors import ProviderTimeout, RateLimited, UpstreamError

log = logging.getLogger(__name__)

MAX_POLL_DELAY = 10.0
POLL_GROWTH = 1.5
MAX_RESULT_BYTES = 50 * 1024 * 1024
#: The longest ``Retry-After`` waited out; a longer one is reported.
MAX_RATE_WAIT = 60.0
#: 429 answers waited out in one call before giving up.
MAX_RATE_RETRIES = 3
T = TypeVar("T")

Progress = Submitted | Pending | Finished


@dataclass(frozen=True)
class GeneratedImage:
    """A result image, checked to decode."""

    data: bytes = field(repr=False)
    format: str  # "png", "jpeg" or "webp"
    width: int
    height: int
    nsfw: bool = False

    @property
    def extension(self) -> str:
        return "jpg" if self.format == "jpeg" else self.format


def poll_delay(attempt: int, min_interval: float, *, cap: float = MAX_POLL_DELAY) -> float:
    """Seconds to wait before poll number ``attempt`` (0-based) of one job.

    Starts at the provider's minimum interval and grows by half each time up to ``cap`` (never
    below the minimum, even if the minimum is above the cap): quick results are seen quickly,
    slow ones do not cost a request a second.
    """
    delay = min_interval * POLL_GROWTH ** max(0, attempt)
    return max(min_interval, min(delay, cap))


async def wait_for_result(
    provider: Provider,
    handle: str,
    *,
    clock: Clock,
    deadline_seconds: float,
    on_progress: Callable[[Progress], object] | None = None,
) -> Finished:
    """Poll ``handle`` until it finishes; :class:`ProviderTimeout` past the deadline."""
    caps = provider.capabilities
    started = clock.monotonic()
    attempt = 0
    while True:
        elapsed = clock.monotonic() - started
        remaining = deadline_seconds - elapsed
        if remaining <= 0:
            raise ProviderTimeout(
                caps.name,
                t(
                    "errors.provider.not_finished",
                    provider=caps.label,
                    seconds=f"{deadline_seconds:.0f}",
                ),
                detail=f"job {handle} still pending after {elapsed:.0f} s",
            )
        await clock.sleep(min(poll_delay(attempt, caps.min_poll_interval), remaining))
        attempt += 1
        deadline = started + deadline_seconds
        state = await patiently(lambda: provider.poll(handle), clock=clock, deadline=deadline)
        if on_progress is not None:
            on_progress(state)
        if isinstance(state, Finished):
            return state


async def patiently(call: Callable[[], Awaitable[T]], *, clock: Clock, deadline: float) -> T:
    """``call()``, repeated after each 429 whose wait is short and ends before ``deadline``
    (on ``clock.monotonic()``); other errors, and long waits, are raised."""
    attempt = 0
    while True:
        attempt += 1
        try:
            return await call()
        except RateLimited as err:
            wait = err.retry_after if err.retry_after is not None else 2.0**attempt
            fits = clock.monotonic() + wait < deadline
            if attempt > MAX_RATE_RETRIES or wait > MAX_RATE_WAIT or not fits:
                raise
            log.info("%s asked to wait %.0f s; waiting", err.provider, wait)
            await clock.sleep(wait)


async def download(
    outputs: tuple[OutputImage, ...],
    *,
    fetcher: Downloader,
    provider: str,
    label: str | None = None,
    max_bytes: int = MAX_RESULT_BYTES,
) -> list[GeneratedImage]:
    """Fetch every output at once (provider URLs expire) and check each one decodes."""

    async def one(output: OutputImage) -> GeneratedImage:
        if output.data is not None:
            data = output.data
        elif output.url is not None:
            try:
                data = await fetcher.fetch(output.url, max_bytes=max_bytes)
            except (DownloadRefused, DownloadFailed) as err:
                # The media errors speak about links a person posted; say it of the result.
                raise DownloadFailed(
                    err.reason,
                    t(
                        "errors.download.result_failed",
                        provider=label or provider,
                        problem=result_problem(err),
                    ),
                    status=err.status if isinstance(err, DownloadFailed) else None,
                ) from err
        else:
            raise UpstreamError(provider, t("errors.provider.empty_result"))
        try:
            image = await prepare_image(data, max_bytes=max_bytes)
        except ImageRejected as err:
            raise UpstreamError(
                provider,
                t("errors.provider.unusable_result"),
                detail=f"result rejected: {err.reason}",
            ) from err
        return GeneratedImage(
            data=image.data,
            format=image.mime.removeprefix("image/"),
            width=image.width,
            height=image.height,
            nsfw=output.nsfw,
        )

    return list(await asyncio.gather(*(one(o) for o in outputs)))


async def generate(
    provider: Provider,
    request: GenerationRequest,
    *,
    fetcher: Downloader,
    clock: Clock,
    deadline_seconds: float = 600.0,
    on_progress: Callable[[Progress], object] | None = None,
    max_result_bytes: int = MAX_RESULT_BYTES,
) -> list[GeneratedImage]:
    """Run ``request`` on ``provider`` and return the checked result images.

    Every failure is a :class:`~bot.errors.KontextError`: provider errors from the error tree,
    download refusals worded as provider failures. Past ``deadline_seconds`` (every phase
    counted) it stops with :class:`ProviderTimeout`.
    """
    provider.check(request)
    caps = provider.capabilities
    try:
        return await within(
            clock,
            deadline_seconds,
            _run(
                provider, request, fetcher, clock, deadline_seconds, on_progress, max_result_bytes
            ),
        )
    except TimeoutError:
        raise ProviderTimeout(
            caps.name,
            t(
                "errors.provider.deadline_passed",
                provider=caps.label,
                seconds=f"{deadline_seconds:g}",
            ),
            detail="the overall deadline passed",
        ) from None


async def _run(
    provider: Provider,
    request: GenerationRequest,
    fetcher: Downloader,
    clock: Clock,
    deadline_seconds: float,
    on_progress: Callable[[Progress], object] | None,
    max_result_bytes: int,
) -> list[GeneratedImage]:
    caps = provider.capabilities
    started = clock.monotonic()
    result = await patiently(
        lambda: provider.submit(request), clock=clock, deadline=started + deadline_seconds
    )
    if on_progress is not None:
        on_progress(result)
    if isinstance(result, Submitted):
        log.info("%s accepted job %s", caps.label, result.handle)
        remaining = deadline_seconds - (clock.monotonic() - started)
        result = await wait_for_result(
            provider,
            result.handle,
            clock=clock,
            deadline_seconds=remaining,
            on_progress=on_progress,
        )
    return await download(
        result.outputs,
        fetcher=fetcher,
        provider=caps.name,
        label=caps.label,
        max_bytes=max_result_bytes,
    )
