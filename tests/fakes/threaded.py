"""Run a fake in a background thread, for synchronous callers (e.g. a CLI ``main()`` that
calls ``asyncio.run`` itself). Script it before the call; stalls are not supported here
because an ``asyncio.Event`` cannot be set safely from another thread.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from tests.fakes.server import FakeProvider


class ThreadedFake:
    """``with ThreadedFake(AimlApiFake, docs=...) as fake: ...``"""

    def __init__(self, cls: type[FakeProvider], **options: Any) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self.fake = cls(**options)

    def __enter__(self) -> FakeProvider:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self.fake.start(), self._loop).result(timeout=10)
        return self.fake

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self.fake.close(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()
