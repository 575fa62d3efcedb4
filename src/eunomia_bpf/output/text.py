"""An aligned text table: a ``TIME`` column, then one upper-case column per field."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from ._sink import Stream


def _cell(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


class TextTableSink:
    """Columns are as wide as the widest of the header and the values seen so far,
    so a table stays aligned after its first batch; the last column is never padded."""

    def __init__(self, stream: Stream, *, header: bool = True,
                 widths: dict[str, dict[str, int]] | None = None) -> None:
        self.stream = stream
        self.header = header
        self._widths: dict[str, dict[str, int]] = widths or {}
        self._headed: set[str] = set()
        self.label_sources = False

    def _row(self, cells: Sequence[str], widths: Sequence[int]) -> str:
        parts = [c.ljust(w) for c, w in zip(cells[:-1], widths[:-1])]
        parts.append(cells[-1])
        return " ".join(parts)

    def records(self, source: str, names: Sequence[str], columns: dict[str, list[Any]],
                count: int) -> None:
        if not count:
            return
        stamp = time.strftime("%H:%M:%S")
        text_cols = [[_cell(v) for v in columns[n]] for n in names]
        heads = ["TIME"] + [n.upper() for n in names]
        if self.label_sources:
            heads.insert(1, "MAP")
        widths = self._widths.setdefault(source, {})
        w = [max(widths.get(h, len(h)), len(h)) for h in heads]
        w[0] = max(w[0], len(stamp))
        first = 2 if self.label_sources else 1
        if self.label_sources:
            w[1] = max(w[1], len(source))
        for i, col in enumerate(text_cols):
            w[first + i] = max(w[first + i], max(map(len, col)))
        for h, width in zip(heads, w):
            widths[h] = width
        out: list[str] = []
        if self.header and source not in self._headed:
            self._headed.add(source)
            out.append(self._row(heads, w))
        prefix = [stamp, source] if self.label_sources else [stamp]
        for row in zip(*text_cols):
            out.append(self._row([*prefix, *row], w))
        out.append("")
        self.stream.write("\n".join(out).encode())

    def lines(self, lines: Sequence[str]) -> None:
        if lines:
            self.stream.write(("\n".join(lines) + "\n").encode())

    def flush(self) -> None:
        self.stream.flush()
