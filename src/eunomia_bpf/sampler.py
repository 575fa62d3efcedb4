"""Sampled maps: read a map every ``interval`` ms and turn its entries into values.

A map whose meta carries ``sample`` (``{"interval": 1000, "type": "log2_hist",
"unit": "usecs", "clear_map": false}``, the public eunomia format) is read whole at
its interval; keys and values are decoded through their BTF types. Per-CPU maps give
one value per CPU, summed for histograms.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .errors import EunomiaError
from .spec import MapSpec, ObjectSpec

if TYPE_CHECKING:
    from .loader import MapHandle

__all__ = ["MapSample", "Sampler", "histogram_slots"]

PERCPU_TYPES = (5, 6, 10)  # PERCPU_HASH, PERCPU_ARRAY, LRU_PERCPU_HASH
ARRAY_TYPES = (2, 6)       # arrays hold every index whether or not it was written
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


def _sum_per_cpu(values: list[Any]) -> Any:
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
        from .decode import layout_for

        sample = dict(map_spec.sample or {})
        self.name = map_spec.name
        self.kind = str(sample.get("type", "default_kv"))
        self.unit = str(sample.get("unit", "(unit)"))
        self.clear = bool(sample.get("clear_map", False))
        self.interval = max(int(sample.get("interval", DEFAULT_INTERVAL_MS)), 1) / 1000
        self.handle = handle
        self.percpu = handle.map_type in PERCPU_TYPES
        self.array = handle.map_type in ARRAY_TYPES
        self.key_layout = layout_for(spec.btf, map_spec.key_type_id) \
            if map_spec.key_type_id else None
        self.value_layout = layout_for(spec.btf, map_spec.value_type_id) \
            if map_spec.value_type_id else None
        if self.value_layout is None:
            raise EunomiaError(f"sample map {self.name}: its value type is not in the "
                               f"object's BTF (declare it with __type(value, ...))")
        from ._libbpf import num_possible_cpus

        self.ncpus = num_possible_cpus() if self.percpu else 1
        self.stride = (handle.value_size + 7) // 8 * 8 if self.percpu else handle.value_size
        self.next_due = time.monotonic() + self.interval

    def _keys(self) -> Iterator[bytes]:
        from ._libbpf import map_next_key

        key: bytes | None = None
        for _ in range(max(self.handle.max_entries, 1) + 1):
            key = map_next_key(self.handle.fd, key, self.handle.key_size)
            if key is None:
                return
            yield key

    def read(self) -> MapSample:
        from ._libbpf import map_delete, map_lookup

        assert self.value_layout is not None
        out = MapSample(self.name, self.kind, self.unit)
        keys = list(self._keys())
        for key in keys:
            raw = map_lookup(self.handle.fd, key, self.stride * self.ncpus)
            if raw is None:
                continue  # deleted between iterating and looking up
            size = self.value_layout.size
            if self.percpu:
                values = [self.value_layout.decode(raw[i * self.stride:i * self.stride + size])
                          for i in range(self.ncpus)]
                value = _sum_per_cpu(values)
            else:
                value = self.value_layout.decode(raw[:size])
            if self.array and not _nonzero(value):
                continue  # an array index nothing wrote to
            key_value = self.key_layout.decode(key) if self.key_layout else key.hex()
            out.entries.append({"key": key_value, "value": value})
        if self.clear:
            for key in keys:
                if self.array:
                    from ._libbpf import map_update

                    map_update(self.handle.fd, key, bytes(self.stride * self.ncpus))
                else:
                    map_delete(self.handle.fd, key)
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
