"""Image bytes as files: ``<root>/<first two hex digits>/<sha256 hex>``.

Content addressing makes every write idempotent, and writing to a temporary file in the same
folder followed by a rename means a reader (or a crash) never sees half a file. These are
blocking calls; the repository runs them in a thread.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import tempfile
from collections.abc import Iterable
from pathlib import Path

_HASH = re.compile(r"^[0-9a-f]{64}$")


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class BlobFiles:
    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, content_hash: str) -> Path | None:
        """The file of a hash, or ``None`` for anything that is not a sha256 hex digest (so
        a caller's string never becomes a path outside the folder)."""
        if not _HASH.match(content_hash):
            return None
        return self.root / content_hash[:2] / content_hash

    def write(self, content_hash: str, data: bytes) -> None:
        target = self.path(content_hash)
        if target is None:
            raise ValueError(f"not a sha256 hex digest: {content_hash!r}")
        if target.exists():
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, temp_name = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            Path(temp_name).replace(target)
        except BaseException:
            with contextlib.suppress(OSError):
                Path(temp_name).unlink()
            raise

    def store(self, data: bytes) -> str:
        """Hash and write in one call (one trip to a thread); returns the sha256 hex."""
        content_hash = sha256_hex(data)
        self.write(content_hash, data)
        return content_hash

    def read(self, content_hash: str) -> bytes | None:
        target = self.path(content_hash)
        if target is None:
            return None
        try:
            return target.read_bytes()
        except FileNotFoundError:
            return None

    def delete(self, hashes: Iterable[str]) -> None:
        for content_hash in hashes:
            target = self.path(content_hash)
            if target is not None:
                with contextlib.suppress(FileNotFoundError):
                    target.unlink()
