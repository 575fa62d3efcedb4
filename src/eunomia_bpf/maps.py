"""Maps from Python: a loaded BPF map as a typed ``MutableMapping``.

>>> counts = program.maps["counts"]          # keys and values through the map's BTF types
>>> counts[os.getpid()] = 0
>>> dict(counts.items())
>>> counts.raw[b"\\x01\\x00\\x00\\x00"]           # the same map, bytes in and bytes out

Per-CPU maps give a list (one value per possible CPU) and take a list or one value for
every CPU. Arrays hold every index: ``len`` is ``max_entries`` and elements cannot be
deleted (``clear()`` zeroes them). :func:`open_pinned` opens a map pinned on bpffs.

The map's fd belongs to the running program (or, for :func:`open_pinned`, to the
:class:`Map`): once that is closed, every operation raises instead of touching an fd
that may have been reused.
"""

from __future__ import annotations

import logging
import os
from collections.abc import ItemsView, Iterator, Mapping, MutableMapping, ValuesView
from typing import TYPE_CHECKING, Any, Protocol

from ._closing import Closing
from .errors import ArgumentError, DecodeError, EunomiaError, LibbpfError

if TYPE_CHECKING:
    from .decode import Layout
    from .loader import MapHandle, RunningProgram
    from .spec import MapSpec, ObjectSpec

__all__ = [
    "ARRAY_TYPES",
    "DATA_TYPES",
    "PERCPU_TYPES",
    "Map",
    "ProgramMaps",
    "dump_entries",
    "format_dump_line",
    "open_pinned",
    "percpu_stride",
]

logger = logging.getLogger("eunomia_bpf.maps")

HASH, ARRAY, PERCPU_HASH, PERCPU_ARRAY, LRU_HASH, LRU_PERCPU_HASH, LPM_TRIE = 1, 2, 5, 6, 9, 10, 11
PERCPU_TYPES = (PERCPU_HASH, PERCPU_ARRAY, LRU_PERCPU_HASH)
ARRAY_TYPES = (ARRAY, PERCPU_ARRAY)  # every index exists whether or not it was written
#: maps that hold keyed data (not events, stacks, programs, sockets...): what a dump shows
DATA_TYPES = (HASH, ARRAY, PERCPU_HASH, PERCPU_ARRAY, LRU_HASH, LRU_PERCPU_HASH, LPM_TRIE)
_INTERNAL_SECTIONS = (".rodata", ".data", ".bss", ".kconfig")


def percpu_stride(value_size: int) -> int:
    """Bytes per CPU in a per-CPU map's value buffer: the kernel rounds up to 8."""
    return (value_size + 7) // 8 * 8


def _bpf() -> Any:
    # The binding is imported on first use: `import eunomia_bpf` stays free of ctypes.
    from . import _libbpf

    return _libbpf


class _Alive(Protocol):
    @property
    def closed(self) -> bool: ...


class _Fd:
    """A map fd and who owns it; shared by a :class:`Map` and its raw view."""

    def __init__(self, fd: int, name: str, *, owner: _Alive | None, owned: bool) -> None:
        self.fd = fd
        self.name = name
        self.owner = owner
        self.owned = owned
        self.closed = False

    def get(self, action: str) -> int:
        if self.closed:
            raise EunomiaError(f"{action}: the map is closed")
        if self.owner is not None and self.owner.closed:
            raise EunomiaError(f"{action}: the program that owns map {self.name} has stopped")
        return self.fd

    @property
    def usable(self) -> bool:
        return not self.closed and (self.owner is None or not self.owner.closed)

    def close(self) -> None:
        if self.owned and not self.closed:
            os.close(self.fd)
        self.closed = self.closed or self.owned


class _Codec:
    """Bytes of a key or value <-> Python values (raw: bytes as they are)."""

    def __init__(self, role: str, size: int, layout: Layout | None) -> None:
        self.role = role
        self.size = size
        self.layout = layout
        if layout is not None and layout.size != size:
            raise DecodeError(f"use {role} type {layout.type_name}: it is {layout.size} bytes, "
                              f"the map's {role}s are {size}")

    def encode(self, value: Any, action: str) -> bytes:
        if self.layout is not None:
            try:
                return self.layout.encode(value)
            except DecodeError as exc:
                raise DecodeError(f"{action}: bad {self.role}: {exc}") from None
        if not isinstance(value, (bytes, bytearray, memoryview)):
            hint = "" if self.role == "key" else " (or a list of bytes, one per CPU)"
            raise ArgumentError(f"{action}: the {self.role} must be bytes{hint}, not "
                                f"{type(value).__name__} (no BTF type is known for the "
                                f"map's {self.role}s)")
        data = bytes(value)
        if len(data) != self.size:
            raise ArgumentError(f"{action}: the {self.role} is {len(data)} bytes, the map's "
                                f"{self.role}s are {self.size}")
        return data

    def decode(self, data: bytes) -> Any:
        return data if self.layout is None else self.layout.decode(data)

    @property
    def is_list(self) -> bool:
        """Values of this type are themselves lists (arrays other than strings)."""
        return self.layout is not None and self.layout.dtype.subdtype is not None \
            and self.layout.dtype.subdtype[0].kind != "S"


class Map(MutableMapping[Any, Any], Closing):
    """One BPF map: ``m[key]``, ``m[key] = value``, ``del m[key]``, ``len``, iteration.

    Keys and values are Python values through the map's BTF types (ints, dicts for
    structs, strings for char arrays), or bytes when it has none. :attr:`raw` is the same
    map with bytes in and out.
    """

    def __init__(self, fd: _Fd, *, name: str, map_type: int, key_size: int, value_size: int,
                 max_entries: int, key_layout: Layout | None = None,
                 value_layout: Layout | None = None) -> None:
        self._fd = fd
        self.name = name
        self.map_type = map_type
        self.key_size = key_size
        self.value_size = value_size
        self.max_entries = max_entries
        self.percpu = map_type in PERCPU_TYPES
        self.is_array = map_type in ARRAY_TYPES
        self.ncpus = int(_bpf().num_possible_cpus()) if self.percpu else 1
        self._stride = percpu_stride(value_size) if self.percpu else value_size
        self._key = _Codec("key", key_size, key_layout)
        self._value = _Codec("value", value_size, value_layout)
        self._raw: Map | None = None
        self._pin_path: str | None = None

    # -- construction --------------------------------------------------------------
    @classmethod
    def from_handle(cls, handle: MapHandle, spec: ObjectSpec | None = None, *,
                    owner: _Alive | None = None) -> Map:
        """A map of a loaded program, typed by the spec's BTF (the kernel's type ids for
        maps the spec does not describe, e.g. ``.bss``)."""
        key_id = value_id = 0
        map_spec: MapSpec | None = None
        if spec is not None:
            map_spec = next((m for m in spec.maps if handle.name in (m.name, m.ident)), None)
            if map_spec is not None:
                key_id, value_id = map_spec.key_type_id, map_spec.value_type_id
            if not key_id and not value_id:
                try:
                    info = _bpf().map_info(handle.fd, f"map {handle.name}")
                    key_id, value_id = info.btf_key_type_id, info.btf_value_type_id
                except LibbpfError as exc:
                    logger.debug("no kernel BTF ids for map %s: %s", handle.name, exc)
        btf = spec.btf if spec is not None else None
        return cls(_Fd(handle.fd, handle.name, owner=owner, owned=False), name=handle.name,
                   map_type=handle.map_type, key_size=handle.key_size,
                   value_size=handle.value_size, max_entries=handle.max_entries,
                   key_layout=_layout(btf, key_id, handle.key_size),
                   value_layout=_layout(btf, value_id, handle.value_size))

    # -- what it is ------------------------------------------------------------------
    @property
    def fd(self) -> int:
        return self._fd.get(f"use map {self.name}")

    @property
    def key_layout(self) -> Layout | None:
        return self._key.layout

    @property
    def value_layout(self) -> Layout | None:
        return self._value.layout

    @property
    def raw(self) -> Map:
        """This map with bytes keys and values (per-CPU: a list of bytes)."""
        if self._key.layout is None and self._value.layout is None:
            return self
        if self._raw is None:
            self._raw = Map(self._fd, name=self.name, map_type=self.map_type,
                            key_size=self.key_size, value_size=self.value_size,
                            max_entries=self.max_entries)
        return self._raw

    @property
    def closed(self) -> bool:
        """True once this map (or the program that owns it) is closed."""
        return not self._fd.usable

    @property
    def pinned(self) -> str | None:
        """The bpffs path this object pinned the map at (None when it did not)."""
        return self._pin_path

    def __repr__(self) -> str:
        types = ", ".join(c.layout.type_name if c.layout else f"{c.size} bytes"
                          for c in (self._key, self._value))
        return f"<Map {self.name} type {self.map_type} ({types}), max {self.max_entries}>"

    # -- elements ----------------------------------------------------------------------
    def __getitem__(self, key: Any) -> Any:
        action = f"look up map {self.name}"
        raw_key = self._key.encode(key, action)
        data = self._call(action, _bpf().map_lookup, raw_key, self._stride * self.ncpus)
        if data is None:
            raise KeyError(key)
        return self._decode_value(data)

    def __setitem__(self, key: Any, value: Any) -> None:
        action = f"update map {self.name}"
        raw_key = self._key.encode(key, action)
        self._call(action, _bpf().map_update, raw_key, self._encode_value(value, action))

    def __delitem__(self, key: Any) -> None:
        action = f"delete from map {self.name}"
        if self.is_array:
            raise ArgumentError(f"{action}: elements of an array map cannot be deleted "
                                f"(set them to zero, or clear() the map)")
        if not self._call(action, _bpf().map_delete, self._key.encode(key, action)):
            raise KeyError(key)

    def __iter__(self) -> Iterator[Any]:
        for key in self._raw_keys():
            yield self._key.decode(key)

    def __len__(self) -> int:
        if self.is_array:
            return self.max_entries
        return sum(1 for _ in self._raw_keys())

    def __contains__(self, key: object) -> bool:
        try:
            self[key]
        except KeyError:
            return False
        return True

    def items(self) -> ItemsView[Any, Any]:
        return _Items(self)

    def values(self) -> ValuesView[Any]:
        return _Values(self)

    def clear(self) -> None:
        """Delete every element (arrays: set every element to zero)."""
        keys = list(self._raw_keys())
        if self.is_array:
            action = f"clear map {self.name}"
            zero = bytes(self._stride * self.ncpus)
            for key in keys:
                self._call(action, _bpf().map_update, key, zero)
            return
        for key in keys:
            self._call(f"clear map {self.name}", _bpf().map_delete, key)

    def lookup_batch(self) -> list[tuple[Any, Any]]:
        """Every (key, value), read with ``BPF_MAP_LOOKUP_BATCH`` (one syscall per chunk)
        where the kernel supports it for this map type, else key by key."""
        pairs = self._call(f"look up map {self.name}", _bpf().map_lookup_batch,
                           self.key_size, self._stride * self.ncpus, self.max_entries,
                           f"map {self.name}")
        if pairs is None:
            pairs = list(self._raw_items())
        return [(self._key.decode(k), self._decode_value(v)) for k, v in pairs]

    # -- pinning and lifetime --------------------------------------------------------
    def pin(self, path: str | os.PathLike[str]) -> None:
        """Pin the map at ``path`` on a bpffs mount: it outlives this process until
        :meth:`unpin` (or ``rm``)."""
        target = os.fspath(path)
        _bpf().obj_pin(self._fd.get(f"pin map {self.name}"), target, f"map {self.name}")
        self._pin_path = target

    def unpin(self) -> None:
        """Remove the pin this object made (or the one :func:`open_pinned` opened)."""
        path, self._pin_path = self._pin_path, None
        if path is None:
            raise ArgumentError(f"unpin map {self.name}: it is not pinned by this object")
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        except OSError as exc:
            self._pin_path = path
            raise LibbpfError(f"unpin map {self.name} at {path}", errno=exc.errno or 0) from None

    def close(self) -> None:
        """Close the fd if this object owns it (:func:`open_pinned`); a program's maps
        close with the program. Idempotent; a pin stays until :meth:`unpin`."""
        self._fd.close()

    # -- internals -------------------------------------------------------------------
    def _call(self, action: str, func: Any, *args: Any) -> Any:
        fd = self._fd.get(action)
        try:
            return func(fd, *args)
        except LibbpfError as exc:
            raise type(exc)(action, errno=exc.errno) from None

    def _raw_keys(self) -> Iterator[bytes]:
        next_key = _bpf().map_next_key
        key: bytes | None = None
        # A hash map restarts from its first key when ours was deleted meanwhile:
        # never walk more than it can hold.
        for _ in range(max(self.max_entries, 1) + 1):
            key = self._call(f"iterate map {self.name}", next_key, key, self.key_size)
            if key is None:
                return
            yield key

    def _raw_items(self) -> Iterator[tuple[bytes, bytes]]:
        lookup = _bpf().map_lookup
        for key in self._raw_keys():
            data = self._call(f"look up map {self.name}", lookup, key, self._stride * self.ncpus)
            if data is not None:  # deleted between iterating and looking up
                yield key, data

    def _decode_value(self, data: bytes) -> Any:
        if not self.percpu:
            return self._value.decode(data)
        size, stride = self.value_size, self._stride
        return [self._value.decode(data[i * stride:i * stride + size])
                for i in range(self.ncpus)]

    def _encode_value(self, value: Any, action: str) -> bytes:
        if not self.percpu:
            return self._value.encode(value, action)
        if self._per_cpu_list(value):
            if len(value) != self.ncpus:
                raise ArgumentError(f"{action}: {len(value)} per-CPU values for "
                                    f"{self.ncpus} possible CPUs")
            parts = [self._value.encode(v, action) for v in value]
        else:
            parts = [self._value.encode(value, action)] * self.ncpus
        pad = bytes(self._stride - self.value_size)
        return b"".join(part + pad for part in parts)

    def _per_cpu_list(self, value: Any) -> bool:
        """A list is one value per CPU, unless the value type itself is a list (then a
        list of lists is)."""
        if not isinstance(value, (list, tuple)):
            return False
        if self._value.is_list:
            return bool(value) and all(isinstance(v, (list, tuple)) for v in value)
        return True


class _Items(ItemsView[Any, Any]):
    _mapping: Map

    def __iter__(self) -> Iterator[tuple[Any, Any]]:
        m = self._mapping
        for key, data in m._raw_items():
            yield m._key.decode(key), m._decode_value(data)


class _Values(ValuesView[Any]):
    _mapping: Map

    def __iter__(self) -> Iterator[Any]:
        m = self._mapping
        for _, data in m._raw_items():
            yield m._decode_value(data)


def _layout(btf: Any, type_id: int, size: int) -> Layout | None:
    """The layout of a key/value type, or None (raw bytes) when there is none that fits."""
    if btf is None or not type_id:
        return None
    from .decode import layout_for

    try:
        layout = layout_for(btf, type_id)
    except EunomiaError as exc:
        logger.debug("map type %d has no usable layout: %s", type_id, exc)
        return None
    return layout if layout.size == size else None


def open_pinned(path: str | os.PathLike[str], key_type: Layout | None = None,
                value_type: Layout | None = None) -> Map:
    """Open the map pinned at ``path``; close it (or use ``with``) when done.

    Keys and values use ``key_type`` / ``value_type`` (layouts from
    :func:`eunomia_bpf.decode.layout_for`) when given, else the BTF the kernel keeps
    for the map, else raw bytes. ``unpin()`` removes ``path``.
    """
    target = os.fspath(path)
    bpf = _bpf()
    fd = bpf.obj_get(target, "pinned map")
    try:
        info = bpf.map_info(fd, f"pinned map {target}")
        if (key_type is None or value_type is None) and info.btf_id:
            kernel_key, kernel_value = _kernel_layouts(info)
            key_type = key_type or kernel_key
            value_type = value_type or kernel_value
        m = Map(_Fd(fd, info.name or target, owner=None, owned=True), name=info.name or target,
                map_type=info.map_type, key_size=info.key_size, value_size=info.value_size,
                max_entries=info.max_entries, key_layout=key_type, value_layout=value_type)
    except BaseException:
        os.close(fd)
        raise
    m._pin_path = target
    return m


def _kernel_layouts(info: Any) -> tuple[Layout | None, Layout | None]:
    from .btf import BTF

    try:
        btf = BTF.from_bytes(_bpf().map_btf(info.btf_id, f"map {info.name}"))
    except EunomiaError as exc:
        logger.debug("no BTF for pinned map %s: %s", info.name, exc)
        return None, None
    return (_layout(btf, info.btf_key_type_id, info.key_size),
            _layout(btf, info.btf_value_type_id, info.value_size))


class ProgramMaps(Mapping[str, Map]):
    """The maps of a running program by name, each a :class:`Map` made on first use."""

    def __init__(self, running: RunningProgram) -> None:
        self.running = running
        self._made: dict[str, Map] = {}

    def __getitem__(self, name: str) -> Map:
        made = self._made.get(name)
        if made is None:
            handle = self.running.maps[name]
            made = self._made[name] = Map.from_handle(handle, self.running.spec,
                                                      owner=self.running)
        return made

    def __iter__(self) -> Iterator[str]:
        return iter(self.running.maps)

    def __len__(self) -> int:
        return len(self.running.maps)


# -- dumping every map at exit (ecli run --dump-maps) -----------------------------------

def _is_dumped(spec: MapSpec, handle: MapHandle) -> bool:
    """User data maps only: not data sections, events, stacks, or maps already sampled."""
    internal = spec.name.startswith(".") or spec.name.endswith(_INTERNAL_SECTIONS)
    return not internal and not spec.sample and handle.map_type in DATA_TYPES


def dump_entries(maps: ProgramMaps) -> list[tuple[str, list[tuple[Any, Any]]]]:
    """(map name, [(key, value)]) of every user map, bpftrace's way: per-CPU values
    summed where they add up, array elements never written left out, counters sorted."""
    from .sampler import read_entries

    out = []
    for map_spec in maps.running.spec.maps:
        handle = maps.running.maps.get(map_spec.name)
        if handle is None or not _is_dumped(map_spec, handle):
            continue
        entries = read_entries(maps[map_spec.name])
        if all(isinstance(v, int) for _, v in entries):
            entries.sort(key=lambda kv: int(kv[1]))
        out.append((map_spec.name, entries))
    return out


def _text(value: Any, *, top: bool = False) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (bytes, bytearray)):
        return value.hex()
    if isinstance(value, Mapping):
        if top:  # a struct key reads like bpftrace's multi-keys: @m[1, bash]
            return ", ".join(_text(v) for v in value.values())
        return "{ " + ", ".join(f".{k} = {_text(v)}" for k, v in value.items()) + " }"
    if isinstance(value, list):
        return "[" + ", ".join(_text(v) for v in value) + "]"
    return str(value)


def format_dump_line(map_name: str, key: Any, value: Any) -> str:
    """``@name[key]: value``, as bpftrace prints its maps at exit."""
    return f"@{map_name}[{_text(key, top=True)}]: {_text(value)}"
