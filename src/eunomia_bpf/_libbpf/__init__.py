"""The libbpf binding: the only ctypes code of the project.

Importing this package loads nothing; ``libbpf.so.1`` is opened on the first call that
needs it (:func:`lib`). Every libbpf return goes through :func:`check`, which turns a
negative return or a NULL pointer into a :class:`~eunomia_bpf.errors.LibbpfError`
subclass carrying ``errno``. libbpf's own messages go to the ``eunomia_bpf.libbpf``
logger.
"""

from __future__ import annotations

from ._lib import capture_messages, check, keep_freed_heap, lib
from ._maps import MapInfo, map_btf, map_info, map_lookup_batch, obj_get, obj_pin
from ._objects import (
    BpfLink,
    BpfMap,
    BpfObject,
    BpfProgram,
    TcHook,
    iter_create,
    map_delete,
    map_lookup,
    map_next_key,
    map_update,
    num_possible_cpus,
    tc_attach,
    tc_detach,
    tc_hook_create,
    tc_hook_destroy,
    xdp_attach,
    xdp_detach,
)
from ._syscalls import (
    ReadOnlyU64,
    if_nametoindex,
    online_cpus,
    perf_event_open_cpu_clock,
    set_parent_death_signal,
    u64_at,
)

__all__ = [
    "BpfLink",
    "BpfMap",
    "BpfObject",
    "BpfProgram",
    "MapInfo",
    "ReadOnlyU64",
    "TcHook",
    "capture_messages",
    "check",
    "if_nametoindex",
    "iter_create",
    "keep_freed_heap",
    "lib",
    "map_btf",
    "map_delete",
    "map_info",
    "map_lookup",
    "map_lookup_batch",
    "map_next_key",
    "map_update",
    "num_possible_cpus",
    "obj_get",
    "obj_pin",
    "online_cpus",
    "perf_event_open_cpu_clock",
    "set_parent_death_signal",
    "tc_attach",
    "tc_detach",
    "tc_hook_create",
    "tc_hook_destroy",
    "u64_at",
    "xdp_attach",
    "xdp_detach",
]
