"""Durable atomic file writes, for everything that must survive a crash whole or not at
all: ebpm's store and lock, the daemon's package blobs and tokens file."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

__all__ = ["write_atomic"]


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to a private (0600) temporary file beside ``path``, fsync it, rename
    it over ``path`` and fsync the directory: readers see the old file or the new one,
    never half of one. The temporary file is ``.<name>.<random>.tmp``; a writer killed
    mid-way leaves only that, which owners of the directory may sweep."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dir_fd)  # the rename itself is durable too
    finally:
        os.close(dir_fd)
