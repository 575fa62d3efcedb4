"""BPF iterators (``iter/task``, ...): attaching makes a link; each read walks it once."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from .._libbpf import BpfProgram, iter_create
from ._auto import target_of
from ._link import AttachOptions, LibbpfLink, Link

__all__ = ["KINDS", "IterLink", "attach"]

KINDS = {"iter": "iter", "iter.s": "iter"}


class IterLink(LibbpfLink):
    """An iterator link; :meth:`read` runs the iterator once and returns its output."""

    def read(self) -> bytes:
        fd = iter_create(self.fd)
        try:
            chunks = []
            while chunk := os.read(fd, 65536):
                chunks.append(chunk)
            return b"".join(chunks)
        finally:
            os.close(fd)


def attach(prog: BpfProgram, section: str, params: Mapping[str, Any],
           options: AttachOptions) -> list[Link]:
    return [IterLink(prog.name, "iter", prog.attach_iter(), target_of(section))]
