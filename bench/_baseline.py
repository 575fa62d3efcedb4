"""The baseline consumer: libbpf's ring_buffer with one ctypes callback per event that
unpacks the record with struct -- how a Python tool reads a ring buffer without batches.

ctypes is fine here: bench/ is not the library."""

from __future__ import annotations

import ctypes
import struct
from collections.abc import Callable

_SampleFn = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t)


def consume_with_callbacks(map_fd: int, stopped: Callable[[], bool],
                           on_event: Callable[[], None],
                           emit: Callable[[tuple[int, ...]], object] | None = None) -> int:
    """Poll the ring buffer map until ``stopped()``; return the number of events seen.

    ``emit`` gets each unpacked record (a tool that prints every event, e.g. as JSON)."""
    lib = ctypes.CDLL("libbpf.so.1", use_errno=True)
    lib.ring_buffer__new.restype = ctypes.c_void_p
    lib.ring_buffer__new.argtypes = [ctypes.c_int, _SampleFn, ctypes.c_void_p, ctypes.c_void_p]
    lib.ring_buffer__poll.restype = ctypes.c_int
    lib.ring_buffer__poll.argtypes = [ctypes.c_void_p, ctypes.c_int]
    lib.ring_buffer__free.argtypes = [ctypes.c_void_p]
    unpack = struct.Struct("<QIIQ").unpack  # ts, pid, cpu, seq
    count = 0

    def on_sample(_ctx: int | None, data: int, size: int) -> int:
        nonlocal count
        fields = unpack(ctypes.string_at(data, size))
        if emit is not None:
            emit(fields)
        count += 1
        return 0

    callback = _SampleFn(on_sample)
    ring = lib.ring_buffer__new(map_fd, callback, None, None)
    if not ring:
        raise OSError(ctypes.get_errno(), "ring_buffer__new failed")
    try:
        while not stopped():
            lib.ring_buffer__poll(ring, 100)
            on_event()
    finally:
        lib.ring_buffer__free(ring)
    return count
