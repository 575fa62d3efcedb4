"""Sampled maps: read a map every ``interval`` ms and turn its entries into values.

A map whose meta carries ``sample`` (``{"interval": 1000, "type": "log2_hist",
"unit": "usecs", "clear_map": false}``, the public eunomia format) is read whole at
its interval; keys and values are decoded through their BTF types. Per-CPU maps give
one value per CPU, summed for histograms.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .errors import EunomiaError
from .spec import MapSpec, ObjectSpec

if TYPE_CHECKING:
    from .loader import MapHandle
    from .maps import Map

__all__ = ["MapSample", "Sampler", "histogram_slots", "read_entries", "sum_per_cpu"]

DEFAULT_INTERVAL_MS = 1000


@dataclass
class MapSample:
    """One reading of a sampled map: ``entries`` are ``{"key": ..., "value": ...}``."""

    map_name: str
    kind: str                     # log2_hist | linear_hist | default_kv
    unit: str
    entries: list[dict[str, Any]] = field(default_factory=list)


def histogram_slots(value: Any) -> list[int] | None:
    """The bucket counts of a histogram value: a ``slots`` field, or a plain array."""
    if isinstance(value, Mapping):
        for key in ("slots", "hist", "buckets"):
            slots = value.get(key)
            if isinstance(slots, list) and all(isinstance(v, int) for v in slots):
                return slots
        return None
    if isinstance(value, list) and all(isinstance(v, int) for v in value):
        return value
    return None


def sum_per_cpu(values: list[Any]) -> Any:
    """Histograms and counters add up across CPUs; anything else stays a list."""
    first = values[0]
    if all(isinstance(v, int) for v in values):
        return sum(values)
    slots = [histogram_slots(v) for v in values]
    if all(s is not None for s in slots):
        total = [sum(column) for column in zip(*slots)]
        if isinstance(first, Mapping):
            merged = dict(first)
            for key in ("slots", "hist", "buckets"):
                if key in merged:
                    merged[key] = total
                    break
            return merged
        return total
    return values




class _SampledMap:
    def __init__(self, spec: ObjectSpec, map_spec: MapSpec, handle: MapHandle) -> None:
        from .maps import Map

        sample = dict(map_spec.sample or {})
        self.name = map_spec.name
        self.kind = str(sample.get("type", "default_kv"))
        self.unit = str(sample.get("unit", "(unit)"))
        self.clear = bool(sample.get("clear_map", False))
        self.interval = max(int(sample.get("interval", DEFAULT_INTERVAL_MS)), 1) / 1000
        self.handle = handle
        self.map = Map.from_handle(handle, spec)
        if self.map.value_layout is None:
            raise EunomiaError(f"sample map {self.name}: its value type is not in the "
                               f"object's BTF (declare it with __type(value, ...))")
        self.next_due = time.monotonic() + self.interval

    def read(self) -> MapSample:
        out = MapSample(self.name, self.kind, self.unit)
        for key, value in read_entries(self.map):
            out.entries.append({"key": key.hex() if isinstance(key, bytes) else key,
                                "value": value})
        if self.clear:
            self.map.clear()
        return out


def read_entries(m: Map) -> list[tuple[Any, Any]]:
    """A map's (key, value) pairs as samples and dumps show them: per-CPU values summed
    where they add up, array indexes nothing wrote to left out."""
    out = []
    for key, value in m.lookup_batch():
        if m.percpu:
            value = sum_per_cpu(value)
        if m.is_array and not _nonzero(value):
            continue
        out.append((key, value))
    return out


def _nonzero(value: Any) -> bool:
    if isinstance(value, Mapping):
        return any(_nonzero(v) for v in value.values())
    if isinstance(value, list):
        return any(_nonzero(v) for v in value)
    return bool(value)


class Sampler:
    """Reads every sampled map of a running program when its interval comes round."""

    def __init__(self, spec: ObjectSpec, maps: Mapping[str, MapHandle]) -> None:
        self._maps: list[_SampledMap] = []
        for map_spec in spec.maps:
            if not map_spec.sample:
                continue
            handle = maps.get(map_spec.name)
            if handle is None:
                raise EunomiaError(f"sample map {map_spec.name}: not in the loaded object")
            self._maps.append(_SampledMap(spec, map_spec, handle))

    def __bool__(self) -> bool:
        return bool(self._maps)

    def seconds_to_next(self) -> float | None:
        if not self._maps:
            return None
        return max(0.0, min(m.next_due for m in self._maps) - time.monotonic())

    def due(self) -> list[MapSample]:
        """Samples of every map whose interval has passed."""
        now = time.monotonic()
        out = []
        for m in self._maps:
            if now >= m.next_due:
                out.append(m.read())
                m.next_due = max(m.next_due + m.interval, now)
        return out

    def read_all(self) -> list[MapSample]:
        return [m.read() for m in self._maps]
