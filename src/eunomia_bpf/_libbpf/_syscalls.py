"""Raw syscalls and memory helpers that libbpf does not wrap for us."""

from __future__ import annotations

import ctypes
import os
import socket

from ..errors import AttachError, LibbpfError
from ._lib import libc

__all__ = ["ReadOnlyU64", "if_nametoindex", "online_cpus", "perf_event_open_cpu_clock",
           "set_parent_death_signal", "u64_at"]

_SYS_PERF_EVENT_OPEN = 298  # x86-64
_PERF_TYPE_SOFTWARE = 1
_PERF_COUNT_SW_CPU_CLOCK = 0
_PERF_FLAG_FD_CLOEXEC = 8
_ATTR_FLAG_FREQ = 1 << 10
_PR_SET_PDEATHSIG = 1


class _PerfEventAttr(ctypes.Structure):
    # PERF_ATTR_SIZE_VER1 (72 bytes): enough for a sampling software event.
    _fields_ = [
        ("type", ctypes.c_uint32),
        ("size", ctypes.c_uint32),
        ("config", ctypes.c_uint64),
        ("sample_period_or_freq", ctypes.c_uint64),
        ("sample_type", ctypes.c_uint64),
        ("read_format", ctypes.c_uint64),
        ("flags", ctypes.c_uint64),
        ("wakeup_events", ctypes.c_uint32),
        ("bp_type", ctypes.c_uint32),
        ("config1", ctypes.c_uint64),
        ("config2", ctypes.c_uint64),
    ]


def perf_event_open_cpu_clock(cpu: int, *, sample_freq: int | None = None,
                              sample_period: int | None = None) -> int:
    """Open a software cpu-clock sampling event on ``cpu`` for all processes; returns its fd.

    ``sample_period`` (nanoseconds of CPU time) wins over ``sample_freq`` (Hz).
    """
    attr = _PerfEventAttr(type=_PERF_TYPE_SOFTWARE, size=ctypes.sizeof(_PerfEventAttr),
                          config=_PERF_COUNT_SW_CPU_CLOCK)
    if sample_period:
        attr.sample_period_or_freq = sample_period
    else:
        attr.sample_period_or_freq = sample_freq or 50
        attr.flags = _ATTR_FLAG_FREQ
    fd = libc().syscall(ctypes.c_long(_SYS_PERF_EVENT_OPEN), ctypes.byref(attr),
                        ctypes.c_int(-1), ctypes.c_int(cpu), ctypes.c_int(-1),
                        ctypes.c_ulong(_PERF_FLAG_FD_CLOEXEC))
    if fd < 0:
        raise AttachError(f"open cpu-clock perf event on cpu {cpu}",
                          errno=ctypes.get_errno())
    return int(fd)


def online_cpus() -> list[int]:
    """CPU numbers from ``/sys/devices/system/cpu/online`` (e.g. "0-3,6")."""
    try:
        with open("/sys/devices/system/cpu/online") as f:
            text = f.read().strip()
    except OSError:
        return list(range(os.cpu_count() or 1))
    cpus: list[int] = []
    for part in filter(None, text.split(",")):
        first, _, last = part.partition("-")
        cpus.extend(range(int(first), int(last or first) + 1))
    return cpus


class ReadOnlyU64:
    """An 8-byte view into a read-only buffer; ``.value`` is one aligned 8-byte load."""

    __slots__ = ("_view",)

    def __init__(self, buffer: object, offset: int) -> None:
        self._view = memoryview(buffer).cast("B")[offset:offset + 8].cast("Q")  # type: ignore[arg-type]

    @property
    def value(self) -> int:
        return int(self._view[0])

    def release(self) -> None:
        self._view.release()


def u64_at(buffer: object, offset: int) -> ctypes.c_uint64 | ReadOnlyU64:
    """A live 8-byte view at ``offset`` of a buffer (e.g. an ``mmap``), never a copy.

    Reading ``.value`` is one 8-byte load, as ring buffer positions require. A writable
    buffer gives a ``ctypes.c_uint64`` (``.value`` can be assigned); a read-only one a
    :class:`ReadOnlyU64`. Release the view before closing the ``mmap``.
    """
    if offset % 8:
        raise ValueError(f"u64_at: offset {offset} is not 8-byte aligned")
    if memoryview(buffer).readonly:  # type: ignore[arg-type]
        return ReadOnlyU64(buffer, offset)
    return ctypes.c_uint64.from_buffer(buffer, offset)  # type: ignore[arg-type]


def if_nametoindex(name: str) -> int:
    try:
        return socket.if_nametoindex(name)
    except OSError as exc:
        raise LibbpfError(f"find interface {name}", errno=exc.errno or 19) from None


def set_parent_death_signal(sig: int) -> None:
    """Have the kernel send ``sig`` to this process when the thread that forked it exits
    (``prctl(PR_SET_PDEATHSIG)``), so that a supervised worker never outlives its daemon,
    not even a ``kill -9`` of it. The setting is cleared by a fork, kept across exec."""
    if libc().prctl(ctypes.c_int(_PR_SET_PDEATHSIG), ctypes.c_ulong(sig), ctypes.c_ulong(0),
                    ctypes.c_ulong(0), ctypes.c_ulong(0)) != 0:
        raise LibbpfError(f"set parent death signal {sig}", errno=ctypes.get_errno())
