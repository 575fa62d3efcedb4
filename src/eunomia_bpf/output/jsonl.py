"""One JSON object per line, keys are the export struct's field names."""

from __future__ import annotations

from collections.abc import Sequence
import json
from typing import Any

import orjson

from ._sink import Stream


def _default(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.hex()
    raise TypeError


def _dumps_slow(obj: Any) -> bytes:
    """The standard library writes integers of any width (128-bit fields) exactly."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False,
                      default=_default).encode()


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
        dumps = orjson.dumps
        try:
            rows = [dumps(dict(zip(keys, row)), default=_default) for row in zip(*cols)]
        except orjson.JSONEncodeError:
            rows = [_dumps_slow(dict(zip(keys, row))) for row in zip(*cols)]
        rows.append(b"")
        self.stream.write(b"\n".join(rows))

    def lines(self, lines: Sequence[str]) -> None:
        if lines:
            out = [orjson.dumps({"trace": ln}) for ln in lines]
            out.append(b"")
            self.stream.write(b"\n".join(out))

    def flush(self) -> None:
        self.stream.flush()
