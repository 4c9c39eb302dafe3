"""A scriptable in-process provider for the engine's tests and benchmark.

It implements :class:`bot.providers.base.Provider` without any network: each ``submit``
takes the next :class:`Plan` scripted for its prompt (or the default plan) and answers
synchronously (a :class:`Finished` at once) or with a handle that is polled through the
plan's ``polls`` (``Pending`` values or errors to raise) before it finishes. It counts every
call per prompt and per handle so tests can check that nothing was submitted twice.
"""

from __future__ import annotations

import asyncio
import io
from collections import Counter, defaultdict, deque
from dataclasses import dataclass, field
from functools import cache

from bot.clock import Clock
from bot.models import AspectRatio
from bot.providers.base import (
    Capabilities,
    Finished,
    GenerationRequest,
    OutputImage,
    Pending,
    Submitted,
)
from bot.providers.errors import ProviderError, UnsupportedRequest


@cache
def png_bytes(
    width: int = 8, height: int = 8, color: tuple[int, int, int] = (200, 40, 40)
) -> bytes:
    """A real, small PNG."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buffer, "PNG")
    return buffer.getvalue()


def capabilities(
    name: str = "fake",
    *,
    asynchronous: bool = False,
    concurrency: int = 2,
    rate_per_minute: float | None = None,
    max_references: int = 4,
    min_poll_interval: float = 1.0,
    text_to_image: bool = True,
) -> Capabilities:
    return Capabilities(
        name=name,
        label=name.title(),
        edit_model=f"{name}-edit",
        text_model=f"{name}-text" if text_to_image else None,
        min_references=1,
        max_references=max_references,
        max_num_images=4,
        aspect_ratios=frozenset(AspectRatio),
        asynchronous=asynchronous,
        min_poll_interval=min_poll_interval,
        local_bytes="upload",
        default_concurrency=concurrency,
        default_rate_per_minute=rate_per_minute,
    )


Step = Pending | ProviderError


@dataclass
class Plan:
    """What one submission does.

    ``submit_error``: raised by submit. ``sync``: answer submit with the result. Otherwise
    submit returns a handle, and each poll takes the next item of ``polls`` (a Pending to
    return or an error to raise); when they run out the job finishes with ``finish`` (an
    error to raise, or None for ``outputs`` PNG images). ``finish_after``: seconds on the
    clock after submission before the job may finish (Pending until then). ``latency``:
    real seconds each submit/poll takes (the benchmark; tests keep it 0).
    """

    submit_error: ProviderError | None = None
    sync: bool = True
    polls: tuple[Step, ...] = ()
    finish: ProviderError | None = None
    finish_after: float | None = None
    outputs: int = 1
    nsfw: tuple[bool, ...] = ()
    url: str | None = None  # deliver by URL instead of bytes
    credits: float | None = 1.0
    latency: float = 0.0


@dataclass
class _Handle:
    prompt: str
    plan: Plan
    submitted_at: float
    polls: deque[Step] = field(default_factory=deque)


class FakeProvider:
    def __init__(
        self,
        caps: Capabilities | None = None,
        *,
        clock: Clock | None = None,
        default: Plan | None = None,
    ) -> None:
        self._caps = caps or capabilities()
        self._clock = clock
        self.default = default or Plan()
        self._scripts: dict[str, deque[Plan]] = defaultdict(deque)
        self._handles: dict[str, _Handle] = {}
        self.submits: Counter[str] = Counter()  # per prompt
        self.polls: Counter[str] = Counter()  # per handle
        self.cancels: list[str] = []
        self.requests: list[GenerationRequest] = []
        self.refuse: str | None = None  # check() raises UnsupportedRequest with this message
        self.in_flight = 0
        self.max_in_flight = 0
        self._next = 0

    @property
    def capabilities(self) -> Capabilities:
        return self._caps

    @property
    def name(self) -> str:
        return self._caps.name

    def script(self, prompt: str, *plans: Plan) -> None:
        """The plans for the next submissions of ``prompt``, in order."""
        self._scripts[prompt].extend(plans)

    def handle_of(self, prompt: str) -> list[str]:
        return [h for h, state in self._handles.items() if state.prompt == prompt]

    def check(self, request: GenerationRequest) -> None:
        if self.refuse is not None:
            raise UnsupportedRequest(self.name, self.refuse)
        if len(request.references) > self._caps.max_references:
            raise UnsupportedRequest(
                self.name, f"{self._caps.label} takes at most {self._caps.max_references} images."
            )

    def _now(self) -> float:
        return self._clock.now() if self._clock is not None else 0.0

    def _result(self, plan: Plan, handle: str | None) -> Finished:
        outputs = tuple(
            OutputImage(
                url=plan.url,
                data=None if plan.url else png_bytes(),
                nsfw=plan.nsfw[i] if i < len(plan.nsfw) else False,
            )
            for i in range(plan.outputs)
        )
        return Finished(outputs=outputs, credits=plan.credits, handle=handle)

    async def submit(self, request: GenerationRequest) -> Submitted | Finished:
        prompt = request.prompt
        queue = self._scripts.get(prompt)
        plan = queue.popleft() if queue else self.default
        self.submits[prompt] += 1
        self.requests.append(request)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if plan.latency:
                await asyncio.sleep(plan.latency)
            if plan.submit_error is not None:
                raise plan.submit_error
            if plan.sync:
                if plan.finish is not None:
                    raise plan.finish
                return self._result(plan, None)
            self._next += 1
            handle = f"{self.name}-{self._next}"
            self._handles[handle] = _Handle(prompt, plan, self._now(), deque(plan.polls))
            return Submitted(handle=handle)
        finally:
            self.in_flight -= 1

    async def poll(self, handle: str) -> Pending | Finished:
        self.polls[handle] += 1
        state = self._handles[handle]
        if state.plan.latency:
            await asyncio.sleep(state.plan.latency)
        if state.polls:
            step = state.polls.popleft()
            if isinstance(step, ProviderError):
                raise step
            return step
        after = state.plan.finish_after
        if after is not None and self._now() < state.submitted_at + after:
            return Pending(status="processing")
        if state.plan.finish is not None:
            raise state.plan.finish
        return self._result(state.plan, handle)

    async def cancel(self, handle: str) -> bool:
        self.cancels.append(handle)
        return True

    async def aclose(self) -> None:
        return None
