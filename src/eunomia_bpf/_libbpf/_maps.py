"""Map syscalls beyond single elements: batch lookup, pinning, map info and map BTF."""

from __future__ import annotations

import ctypes
import errno as errno_mod
import os
from dataclasses import dataclass

from ..errors import LibbpfError
from ._lib import check, lib

__all__ = ["MapInfo", "map_btf", "map_info", "map_lookup_batch", "obj_get", "obj_pin"]

# The kernel's own ENOTSUPP (not in errno): what BPF_MAP_LOOKUP_BATCH gives for map
# types without batch operations.
_ENOTSUPP = 524
_BATCH_UNSUPPORTED = (errno_mod.EINVAL, errno_mod.EOPNOTSUPP, _ENOTSUPP)
_FIRST_BATCH = 4096


class _BatchOpts(ctypes.Structure):
    _fields_ = [("sz", ctypes.c_size_t), ("elem_flags", ctypes.c_uint64),
                ("flags", ctypes.c_uint64)]


class _BpfMapInfo(ctypes.Structure):
    # struct bpf_map_info of linux/bpf.h; the kernel fills what it knows of the prefix.
    _fields_ = [
        ("type", ctypes.c_uint32),
        ("id", ctypes.c_uint32),
        ("key_size", ctypes.c_uint32),
        ("value_size", ctypes.c_uint32),
        ("max_entries", ctypes.c_uint32),
        ("map_flags", ctypes.c_uint32),
        ("name", ctypes.c_char * 16),
        ("ifindex", ctypes.c_uint32),
        ("btf_vmlinux_value_type_id", ctypes.c_uint32),
        ("netns_dev", ctypes.c_uint64),
        ("netns_ino", ctypes.c_uint64),
        ("btf_id", ctypes.c_uint32),
        ("btf_key_type_id", ctypes.c_uint32),
        ("btf_value_type_id", ctypes.c_uint32),
        ("_pad", ctypes.c_uint32),
        ("map_extra", ctypes.c_uint64),
    ]


class _BpfBtfInfo(ctypes.Structure):
    _fields_ = [
        ("btf", ctypes.c_uint64),
        ("btf_size", ctypes.c_uint32),
        ("id", ctypes.c_uint32),
        ("name", ctypes.c_uint64),
        ("name_len", ctypes.c_uint32),
        ("kernel_btf", ctypes.c_uint32),
    ]


@dataclass(frozen=True)
class MapInfo:
    """What the kernel says about a map fd."""

    map_type: int
    id: int
    key_size: int
    value_size: int
    max_entries: int
    map_flags: int
    name: str
    btf_id: int
    btf_key_type_id: int
    btf_value_type_id: int


def map_lookup_batch(fd: int, key_size: int, value_size: int, max_entries: int,
                     what: str = "map") -> list[tuple[bytes, bytes]] | None:
    """Every (key, value) of the map with ``BPF_MAP_LOOKUP_BATCH``, a chunk per syscall.

    None when the kernel has no batch lookup for this map type (the caller iterates
    instead). ``value_size`` is the whole per-element size (all CPUs of a per-CPU map).
    """
    capacity = max(1, min(max_entries, _FIRST_BATCH))
    # The resume token is a bucket number (hash) or a key (arrays): room for either.
    token_size = max(key_size, 8)
    opts = _BatchOpts(sz=ctypes.sizeof(_BatchOpts))
    keys = ctypes.create_string_buffer(key_size * capacity)
    values = ctypes.create_string_buffer(value_size * capacity)
    token_in: ctypes.Array[ctypes.c_char] | None = None
    token_out = ctypes.create_string_buffer(token_size)
    out: list[tuple[bytes, bytes]] = []
    while True:
        count = ctypes.c_uint32(capacity)
        ret = lib().bpf_map_lookup_batch(fd, token_in, token_out, keys, values,
                                         ctypes.byref(count), ctypes.byref(opts))
        if ret == -errno_mod.ENOSPC and count.value == 0:
            # A hash bucket holds more entries than one chunk: grow the chunk.
            capacity *= 2
            keys = ctypes.create_string_buffer(key_size * capacity)
            values = ctypes.create_string_buffer(value_size * capacity)
            continue
        if ret < 0 and ret != -errno_mod.ENOENT:
            if token_in is None and -ret in _BATCH_UNSUPPORTED:
                return None
            check(ret, f"look up {what} in batches")
        raw_keys, raw_values = keys.raw, values.raw
        out.extend((raw_keys[i * key_size:(i + 1) * key_size],
                    raw_values[i * value_size:(i + 1) * value_size])
                   for i in range(count.value))
        if ret == -errno_mod.ENOENT:
            return out
        token_in, token_out = token_out, ctypes.create_string_buffer(token_size)


def _on_bpffs(path: str) -> bool:
    """Whether the deepest mount holding ``path`` is a bpffs (True if unknown)."""
    target = os.path.abspath(path)
    try:
        with open("/proc/self/mounts") as f:
            mounts = [line.split()[1:3] for line in f]
    except OSError:
        return True
    best, fstype = "", "bpf"
    for point, kind in mounts:
        inside = target == point or target.startswith(point.rstrip("/") + "/")
        if inside and len(point) >= len(best):
            best, fstype = point, kind
    return fstype == "bpf"


def _hint_bpffs(path: str, exc: LibbpfError) -> LibbpfError:
    if _on_bpffs(path):
        return exc
    hinted = LibbpfError(f"{exc} ({path} is not on a bpffs mount such as /sys/fs/bpf)")
    hinted.errno = exc.errno
    return hinted


def obj_pin(fd: int, path: str, what: str = "map") -> None:
    """Pin the object behind ``fd`` at ``path`` (a file on a bpffs mount)."""
    try:
        check(lib().bpf_obj_pin(fd, os.fsencode(path)), f"pin {what} at {path}")
    except LibbpfError as exc:
        raise _hint_bpffs(path, exc) from None


def obj_get(path: str, what: str = "pinned object") -> int:
    """A new fd for the object pinned at ``path``."""
    try:
        return check(lib().bpf_obj_get(os.fsencode(path)), f"open {what} {path}")
    except LibbpfError as exc:
        raise _hint_bpffs(path, exc) from None


def _is_map_fd(fd: int) -> bool:
    try:
        with open(f"/proc/self/fdinfo/{fd}") as f:
            return any(line.startswith("map_type:") for line in f)
    except OSError:
        return True  # no procfs: let the kernel's answer stand


def map_info(fd: int, what: str = "map") -> MapInfo:
    """Type, sizes, name and BTF ids of the map behind ``fd``; LibbpfError if it is not one."""
    if not _is_map_fd(fd):  # a program's or link's info would fill the struct as well
        raise LibbpfError(f"get info of {what}: it is not a BPF map", errno=errno_mod.EINVAL)
    info = _BpfMapInfo()
    size = ctypes.c_uint32(ctypes.sizeof(info))
    check(lib().bpf_obj_get_info_by_fd(fd, ctypes.byref(info), ctypes.byref(size)),
          f"get info of {what}")
    return MapInfo(map_type=info.type, id=info.id, key_size=info.key_size,
                   value_size=info.value_size, max_entries=info.max_entries,
                   map_flags=info.map_flags, name=info.name.decode("utf-8", "replace"),
                   btf_id=info.btf_id, btf_key_type_id=info.btf_key_type_id,
                   btf_value_type_id=info.btf_value_type_id)


def map_btf(btf_id: int, what: str = "map") -> bytes:
    """The raw BTF (``.BTF`` section bytes) the kernel keeps under ``btf_id``."""
    fd = check(lib().bpf_btf_get_fd_by_id(btf_id), f"open BTF {btf_id} of {what}")
    try:
        info = _BpfBtfInfo()
        size = ctypes.c_uint32(ctypes.sizeof(info))
        check(lib().bpf_obj_get_info_by_fd(fd, ctypes.byref(info), ctypes.byref(size)),
              f"get info of BTF {btf_id}")
        data = ctypes.create_string_buffer(info.btf_size)
        info = _BpfBtfInfo(btf=ctypes.addressof(data), btf_size=len(data))
        size = ctypes.c_uint32(ctypes.sizeof(info))
        check(lib().bpf_obj_get_info_by_fd(fd, ctypes.byref(info), ctypes.byref(size)),
              f"read BTF {btf_id}")
        return data.raw[:info.btf_size]
    finally:
        os.close(fd)
