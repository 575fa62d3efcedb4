"""An aligned text table: a ``TIME`` column, then one upper-case column per field."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..btf import BTF, Array, Enum, Enum64, Float, Int, Struct, Union
from ._sink import Stream
from .histogram import describe_key, linear_histogram, log2_histogram

if TYPE_CHECKING:
    from ..sampler import MapSample

_INT_WIDTH = {1: 3, 2: 5, 4: 7, 8: 12, 16: 20}
_MAX_TEXT_WIDTH = 16


def column_widths(btf: BTF, type_id: int) -> dict[str, int]:
    """Column widths from the field types, so that a table is aligned from its first row."""
    t = btf[btf.resolve(type_id)]
    if not isinstance(t, (Struct, Union)):
        return {}
    out: dict[str, int] = {}
    for m in t.members:
        ft = btf[btf.resolve(m.type)]
        width = 8
        if isinstance(ft, Int):
            width = 5 if ft.bool else _INT_WIDTH.get(ft.size, 12)
        elif isinstance(ft, Float):
            width = 10
        elif isinstance(ft, (Enum, Enum64)):
            width = max((len(v.name) for v in ft.values), default=8)
        elif isinstance(ft, Array):
            elem = btf[btf.resolve(ft.type)]
            if isinstance(elem, Int) and elem.size == 1:
                width = min(ft.nelems - 1, _MAX_TEXT_WIDTH)
        out[m.name.upper()] = width
    return out


def _cell(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return ";".join(value)  # symbolised stacks, lists of names
    return str(value)


class TextTableSink:
    """Fixed columns: as wide as the field's type suggests (or its header), so rows stay
    aligned; a longer value pushes only its own row. The last column is never padded."""

    def __init__(self, stream: Stream, *, header: bool = True,
                 widths: dict[str, dict[str, int]] | None = None) -> None:
        self.stream = stream
        self.header = header
        self.label_sources = False
        self._hints = widths or {}
        self._fixed: dict[str, list[int]] = {}

    @staticmethod
    def _row(cells: Sequence[str], widths: Sequence[int]) -> str:
        parts = [c.ljust(w) for c, w in zip(cells[:-1], widths[:-1])]
        parts.append(cells[-1])
        return " ".join(parts)

    def _heads(self, names: Sequence[str]) -> list[str]:
        heads = ["TIME"] + [n.upper() for n in names]
        if self.label_sources:
            heads.insert(1, "MAP")
        return heads

    def records(self, source: str, names: Sequence[str], columns: dict[str, list[Any]],
                count: int) -> None:
        if not count:
            return
        stamp = time.strftime("%H:%M:%S")
        text_cols = [[_cell(v) for v in columns[n]] for n in names]
        prefix = [stamp, source] if self.label_sources else [stamp]
        out: list[str] = []
        widths = self._fixed.get(source)
        if widths is None:
            heads = self._heads(names)
            hints = self._hints.get(source, {})
            first = [*prefix, *(col[0] for col in text_cols)]
            widths = [max(len(h), hints.get(h, len(c))) for h, c in zip(heads, first)]
            self._fixed[source] = widths
            if self.header:
                out.append(self._row(heads, widths))
        for row in zip(*text_cols):
            out.append(self._row([*prefix, *row], widths))
        out.append("")
        self.stream.write("\n".join(out).encode())

    def lines(self, lines: Sequence[str]) -> None:
        if lines:
            self.stream.write(("\n".join(lines) + "\n").encode())

    def samples(self, sample: MapSample) -> None:
        """Histograms one per key (BCC style); other maps as a KEY / VALUE table."""
        from ..sampler import histogram_slots

        out = [f"{time.strftime('%H:%M:%S')} {sample.map_name}:"]
        if not sample.entries:
            out.append("(empty)")
        for entry in sample.entries:
            slots = histogram_slots(entry["value"]) if sample.kind.endswith("_hist") else None
            if slots is None:
                out.append(f"{_cell(entry['key'])}: {_cell(entry['value'])}")
                continue
            extra = {k: v for k, v in entry["value"].items()
                     if histogram_slots({k: v}) is None} \
                if isinstance(entry["value"], dict) else {}
            key = entry["key"]
            out.append("")
            out.append(describe_key({**key, **extra} if isinstance(key, dict)
                                    else ({"key": key, **extra} if extra else key)))
            draw = log2_histogram if sample.kind == "log2_hist" else linear_histogram
            out.extend(draw(slots, sample.unit))
        out.append("")
        self.stream.write("\n".join(out).encode())

    def flush(self) -> None:
        self.stream.flush()
