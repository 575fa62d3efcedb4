"""One JSON object per line, keys are the export struct's field names.

The hot path formats whole columns: each column becomes a list of ready JSON fragments
(integers stay ints for ``%d``, strings are escaped by the json module's C encoder) and
one ``%`` template per row writes the line — about half the cost of building a dict and
serialising it per event.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from json.encoder import encode_basestring
from typing import TYPE_CHECKING, Any

import orjson

from ._sink import Stream

if TYPE_CHECKING:
    from ..sampler import MapSample


def _default(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.hex()
    raise TypeError


def _dumps_any(value: Any) -> str:
    """Any value as JSON text; the standard library writes 128-bit integers exactly."""
    try:
        return orjson.dumps(value, default=_default).decode()
    except orjson.JSONEncodeError:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=_default)


_BOOL = ("false", "true")


def _column_fragments(column: list[Any], *, exact: bool = False) -> tuple[str, list[Any]]:
    """(``%`` conversion, values) rendering a column as JSON.

    A column comes from one struct field, so its first value tells the type of all; a
    column that breaks that (an enum value with no name among names) makes the fast
    path raise TypeError, and ``exact=True`` then renders every value on its own.
    """
    first = column[0]
    if exact:
        return "%s", [_dumps_any(v) for v in column]
    if type(first) is int:
        return "%d", column
    if type(first) is str:
        escape: Callable[[str], str] = encode_basestring
        return "%s", [escape(v) for v in column]
    if type(first) is bool:
        return "%s", [_BOOL[v] for v in column]
    return "%s", [_dumps_any(v) for v in column]


def _key(name: str) -> str:
    return encode_basestring(name).replace("%", "%%")


class JsonLinesSink:
    """JSON lines. With several event sources each object also names its ``"map"``."""

    def __init__(self, stream: Stream, *, label_sources: bool = False) -> None:
        self.stream = stream
        self.label_sources = label_sources

    def records(self, source: str, names: Sequence[str], columns: dict[str, list[Any]],
                count: int) -> None:
        if not count:
            return
        keys = list(names)
        cols = [columns[n] for n in names]
        if self.label_sources:
            keys.append("map")
            cols.append([source] * count)
        try:
            rows = self._rows(keys, cols, exact=False)
        except TypeError:
            rows = self._rows(keys, cols, exact=True)
        rows.append("")
        self.stream.write("\n".join(rows).encode())

    @staticmethod
    def _rows(keys: list[str], cols: list[list[Any]], *, exact: bool) -> list[str]:
        parts = [_column_fragments(c, exact=exact) for c in cols]
        template = "{" + ",".join(f"{_key(k)}:{conv}" for k, (conv, _) in zip(keys, parts)) + "}"
        return [template % row for row in zip(*(vals for _, vals in parts))]

    def lines(self, lines: Sequence[str]) -> None:
        if lines:
            out = [orjson.dumps({"trace": ln}) for ln in lines]
            out.append(b"")
            self.stream.write(b"\n".join(out))

    def samples(self, sample: MapSample) -> None:
        """One ``{"map", "key", "value"}`` object per map entry."""
        out = [_dumps_any({"map": sample.map_name, "key": e["key"], "value": e["value"]})
               for e in sample.entries]
        if out:
            out.append("")
            self.stream.write("\n".join(out).encode())

    def flush(self) -> None:
        self.stream.flush()
