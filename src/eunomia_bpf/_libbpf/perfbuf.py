"""libbpf's perf buffer behind plain Python callbacks (the only ctypes for events).

The perf buffer calls back once per event; that is why it is the slow, legacy path.
``perf_buffer_open`` wraps ``perf_buffer__new`` so that ``events.py`` never sees ctypes:
samples arrive as ``bytes`` and lost counts as ``int``.
"""

from __future__ import annotations

import ctypes
import functools
from collections.abc import Callable

from eunomia_bpf.errors import LibbpfError

from ._lib import check, lib

__all__ = ["PerfBuffer", "perf_buffer_open"]

# void (*)(void *ctx, int cpu, void *data, __u32 size)
_SampleFn = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p,
                             ctypes.c_uint32)
# void (*)(void *ctx, int cpu, __u64 cnt)
_LostFn = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_int, ctypes.c_uint64)


@functools.cache
def _lib() -> ctypes.CDLL:
    """The shared libbpf handle with the perf buffer functions declared as well."""
    handle = lib()
    for name, restype, argtypes in (
            ("perf_buffer__new", ctypes.c_void_p,
             [ctypes.c_int, ctypes.c_size_t, _SampleFn, _LostFn, ctypes.c_void_p,
              ctypes.c_void_p]),
            ("perf_buffer__consume", ctypes.c_int, [ctypes.c_void_p]),
            ("perf_buffer__epoll_fd", ctypes.c_int, [ctypes.c_void_p]),
            ("perf_buffer__free", None, [ctypes.c_void_p])):
        func = getattr(handle, name)
        func.restype = restype
        func.argtypes = argtypes
    return handle


class PerfBuffer:
    """A live ``struct perf_buffer``; keeps the C callbacks alive until ``free()``."""

    def __init__(self, handle: int, sample: object, lost: object) -> None:
        self._handle: int | None = handle
        self._callbacks = (sample, lost)

    def consume(self) -> int:
        """Call the callbacks for every pending event; returns libbpf's result (>= 0)."""
        if self._handle is None:
            raise LibbpfError("consume perf buffer: it is freed")
        return check(_lib().perf_buffer__consume(self._handle), "consume perf buffer")

    def epoll_fd(self) -> int:
        if self._handle is None:
            raise LibbpfError("get perf buffer epoll fd: it is freed")
        return check(_lib().perf_buffer__epoll_fd(self._handle), "get perf buffer epoll fd")

    def free(self) -> None:
        """Close the per-CPU buffers and their fds; idempotent."""
        if self._handle is not None:
            _lib().perf_buffer__free(self._handle)
            self._handle = None


def perf_buffer_open(map_fd: int, pages: int, on_sample: Callable[[int, bytes], None],
                     on_lost: Callable[[int, int], None]) -> PerfBuffer:
    """Open a perf buffer of ``pages`` pages per CPU on a PERF_EVENT_ARRAY map fd."""
    if pages <= 0 or pages & (pages - 1):
        raise LibbpfError(f"open perf buffer: page count {pages} is not a power of 2")

    def sample(_ctx: int | None, cpu: int, data: int, size: int) -> None:
        on_sample(cpu, ctypes.string_at(data, size))

    def lost(_ctx: int | None, cpu: int, count: int) -> None:
        on_lost(cpu, count)

    sample_fn, lost_fn = _SampleFn(sample), _LostFn(lost)
    handle = check(_lib().perf_buffer__new(map_fd, pages, sample_fn, lost_fn, None, None),
                   f"open perf buffer on map fd {map_fd}")
    return PerfBuffer(handle, sample_fn, lost_fn)
