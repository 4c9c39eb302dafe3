"""The one Protocol every provider implements, and the values that cross it.

A provider turns a :class:`GenerationRequest` into images in two steps so that a restart never
bills twice: :meth:`Provider.submit` returns either a :class:`Submitted` handle (save it, then
poll) or, for synchronous APIs, a :class:`Finished` result at once; :meth:`Provider.poll`
turns a saved handle into :class:`Pending` or :class:`Finished`. Result bytes are fetched by
the caller through :class:`bot.media.MediaFetcher` (provider URLs expire: download at once).
"""

from __future__ import annotations

import tomllib
from functools import cache
from pathlib import Path
from typing import Any, Final, Literal, Protocol

from pydantic import Field

from bot.models import (
    MAX_PROMPT_LENGTH,
    MAX_REFERENCES,
    AspectRatio,
    Frozen,
    OutputFormat,
)

#: Every provider's facts, one table each (see :meth:`Capabilities.declared`).
CAPABILITIES_FILE: Final = Path(__file__).with_name("capabilities.toml")

#: The largest integer JSON parsers agree on (RFC 8259 section 6: beyond 2**53 - 1, numbers
#: held as doubles lose precision): the seed ceiling where a provider documents none.
MAX_JSON_INTEGER = 2**53 - 1


class ReferenceImage(Frozen):
    """A validated reference image: bytes always, plus a public URL when one exists."""

    data: bytes = Field(repr=False)
    mime: str  # image/png, image/jpeg or image/webp
    width: int
    height: int
    url: str | None = None  # e.g. a Discord attachment URL the provider may fetch


class GenerationRequest(Frozen):
    """The common request, mapped to each provider's own fields by its module."""

    prompt: str = Field(min_length=1, max_length=MAX_PROMPT_LENGTH)
    references: tuple[ReferenceImage, ...] = Field(default=(), max_length=MAX_REFERENCES)
    aspect_ratio: AspectRatio | None = None  # None: closest to the first reference
    seed: int | None = Field(default=None, ge=1)
    guidance: float | None = Field(default=None, ge=0, le=20)
    safety_tolerance: int | None = Field(default=None, ge=1, le=6)
    output_format: OutputFormat = OutputFormat.PNG
    num_images: int = Field(default=1, ge=1, le=4)

    def effective_aspect_ratio(self) -> AspectRatio:
        """The ratio to send: the chosen one, else the first reference's, else 1:1."""
        if self.aspect_ratio is not None:
            return self.aspect_ratio
        if self.references:
            first = self.references[0]
            return AspectRatio.closest(first.width, first.height)
        return AspectRatio.R1_1


class Capabilities(Frozen):
    """What a provider can do; requests are checked against this before any network call."""

    name: str  # registry key, e.g. "aimlapi"
    label: str  # human name, e.g. "AIML API"
    edit_model: str
    text_model: str | None = None  # None: no text-to-image
    min_references: int = 1
    max_references: int
    max_num_images: int = 1
    aspect_ratios: frozenset[AspectRatio] = frozenset(AspectRatio)
    output_formats: frozenset[OutputFormat] = frozenset(OutputFormat)
    seed: bool = True
    max_seed: int = MAX_JSON_INTEGER  # seeds run from 1 to this (the provider's documented top)
    guidance_range: tuple[float, float] | None = None
    safety_tolerance: bool = False
    asynchronous: bool  # submit returns a handle to poll
    min_poll_interval: float = 1.0  # seconds between polls of one job
    local_bytes: Literal["data_uri", "upload"]  # how bytes without a public URL are sent
    max_reference_side: int | None = None  # downscale references beyond this many pixels
    default_concurrency: int = 2  # from the provider's documented entry tier
    default_rate_per_minute: float | None = None
    result_hosts: tuple[str, ...] = ()  # hosts results are downloaded from (allowlist)
    models: tuple[str, ...] = ()  # model tiers offered (``<PROVIDER>_MODEL``), default first
    cancel: bool = False  # the provider has a cancel call
    sync_mode: bool = False  # the submit can answer with the finished result when it is quick
    price_per_image: float | None = None  # US dollars, where the provider documents it

    @property
    def text_to_image(self) -> bool:
        return self.text_model is not None

    @classmethod
    def declared(cls, name: str) -> Capabilities:
        """The provider ``name``'s facts, as ``capabilities.toml`` beside this module states
        them (one table for every provider, so they read side by side)."""
        return cls(name=name, **_declared_facts()[name])


@cache
def _declared_facts() -> dict[str, dict[str, Any]]:
    with CAPABILITIES_FILE.open("rb") as fh:
        return tomllib.load(fh)


class Submitted(Frozen):
    """An accepted asynchronous job: persist ``handle`` before polling it."""

    handle: str
    eta_seconds: float | None = None


class OutputImage(Frozen):
    """One result image: a URL to download at once, or the bytes themselves."""

    url: str | None = None
    data: bytes | None = Field(default=None, repr=False)
    nsfw: bool = False
    index: int | None = None  # its place in a batch (0-based); None: its place in the list


class Finished(Frozen):
    outputs: tuple[OutputImage, ...]
    seed: int | None = None
    credits: float | None = None  # what the provider reports it charged
    handle: str | None = None


class Pending(Frozen):
    status: str  # the provider's word, e.g. "processing"
    progress: float | None = None  # 0..1 when the provider reports it
    eta_seconds: float | None = None


class Provider(Protocol):
    """One hosted FLUX.1 Kontext API. Implementations live one per module in this package."""

    @property
    def capabilities(self) -> Capabilities: ...

    def check(self, request: GenerationRequest) -> None:
        """Raise :class:`~bot.providers.errors.UnsupportedRequest` if this request cannot be
        served here, naming which registered provider can. Makes no network call."""
        ...

    async def submit(self, request: GenerationRequest) -> Submitted | Finished: ...

    async def poll(self, handle: str) -> Pending | Finished: ...

    async def cancel(self, handle: str) -> bool:
        """Ask the provider to stop a job; ``False`` where it cannot."""
        ...

    async def aclose(self) -> None: ...
