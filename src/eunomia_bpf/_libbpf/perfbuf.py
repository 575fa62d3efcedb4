"""libbpf's perf buffer (``BPF_MAP_TYPE_PERF_EVENT_ARRAY``) with Python callbacks.

Each sample costs a ctypes callback (microseconds): prefer ring buffers for high rates.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable

from ..errors import LibbpfError
from ._lib import check, lib

__all__ = ["PerfBuffer", "perf_buffer_open"]

_SAMPLE_FN = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p,
                              ctypes.c_uint32)
_LOST_FN = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_int, ctypes.c_uint64)


class _PerfBufferOpts(ctypes.Structure):
    _fields_ = [("sz", ctypes.c_size_t)]


class PerfBuffer:
    """An owned ``struct perf_buffer *``; :meth:`free` is idempotent."""

    def __init__(self, map_fd: int, pages: int, on_sample: Callable[[int, bytes], None],
                 on_lost: Callable[[int, int], None]) -> None:
        def sample(_ctx: int | None, cpu: int, data: int, size: int) -> None:
            on_sample(cpu, ctypes.string_at(data, size))

        def lost(_ctx: int | None, cpu: int, count: int) -> None:
            on_lost(cpu, count)

        # Kept on self: libbpf calls them as long as the buffer lives.
        self._sample = _SAMPLE_FN(sample)
        self._lost = _LOST_FN(lost)
        opts = _PerfBufferOpts(sz=ctypes.sizeof(_PerfBufferOpts))
        self._ptr: int | None = check(
            lib().perf_buffer__new(map_fd, pages, ctypes.cast(self._sample, ctypes.c_void_p),
                                   ctypes.cast(self._lost, ctypes.c_void_p), None,
                                   ctypes.byref(opts)),
            f"open perf buffer on map fd {map_fd}")

    def _handle(self) -> int:
        if self._ptr is None:
            raise LibbpfError("use perf buffer: it is freed")
        return self._ptr

    def epoll_fd(self) -> int:
        return check(lib().perf_buffer__epoll_fd(self._handle()), "get perf buffer epoll fd")

    def poll(self, timeout_ms: int) -> int:
        """Wait up to ``timeout_ms`` and run the callbacks; returns how many samples."""
        return check(lib().perf_buffer__poll(self._handle(), timeout_ms), "poll perf buffer")

    def consume(self) -> int:
        """Run the callbacks for everything already in the buffers, without waiting."""
        return check(lib().perf_buffer__consume(self._handle()), "consume perf buffer")

    def free(self) -> None:
        ptr, self._ptr = self._ptr, None
        if ptr is not None:
            lib().perf_buffer__free(ptr)

    close = free


def perf_buffer_open(map_fd: int, pages: int, on_sample: Callable[[int, bytes], None],
                     on_lost: Callable[[int, int], None]) -> PerfBuffer:
    """Open libbpf's perf buffer over ``map_fd`` with ``pages`` pages per CPU."""
    return PerfBuffer(map_fd, pages, on_sample, on_lost)
