from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, BinaryIO, Protocol

if TYPE_CHECKING:
    from ..sampler import MapSample

Stream = BinaryIO


class RecordSink(Protocol):
    """Receives decoded records batch by batch, and raw text lines (bpf_printk)."""

    def records(self, source: str, names: Sequence[str], columns: dict[str, list[Any]],
                count: int) -> None: ...

    def lines(self, lines: Sequence[str]) -> None: ...

    def samples(self, sample: MapSample) -> None: ...

    def flush(self) -> None: ...
