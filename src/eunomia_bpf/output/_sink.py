from __future__ import annotations

from collections.abc import Sequence
from typing import Any, BinaryIO, Protocol

Stream = BinaryIO


class RecordSink(Protocol):
    """Receives decoded records batch by batch, and raw text lines (bpf_printk)."""

    def records(self, source: str, names: Sequence[str], columns: dict[str, list[Any]],
                count: int) -> None: ...

    def lines(self, lines: Sequence[str]) -> None: ...

    def flush(self) -> None: ...
