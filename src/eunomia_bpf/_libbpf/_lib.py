"""The lazy ``libbpf.so.1`` handle: C declarations, the return-code checker and the log hook.

Nothing here runs at import time. The first call to :func:`lib` loads the shared
library, declares the argument and return types of every function the project uses and
routes libbpf's print callback to the ``eunomia_bpf.libbpf`` logger.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno as errno_mod
import logging
import threading
from collections.abc import Iterator
from typing import Any

from ..errors import LibbpfError

__all__ = ["capture_messages", "check", "lib", "libc"]

LIBBPF_SONAME = "libbpf.so.1"

logger = logging.getLogger("eunomia_bpf.libbpf")

_P = ctypes.c_void_p
_I = ctypes.c_int
_U32 = ctypes.c_uint32
_SZ = ctypes.c_size_t
_STR = ctypes.c_char_p
_SZP = ctypes.POINTER(ctypes.c_size_t)

# name: (restype, argtypes). Pointers to libbpf structs are plain void pointers.
_DECLARATIONS: dict[str, tuple[Any, list[Any]]] = {
    "libbpf_set_print": (_P, [_P]),
    "bpf_object__open_mem": (_P, [_P, _SZ, _P]),
    "bpf_object__load": (_I, [_P]),
    "bpf_object__close": (None, [_P]),
    "bpf_object__name": (_STR, [_P]),
    "bpf_object__next_program": (_P, [_P, _P]),
    "bpf_object__next_map": (_P, [_P, _P]),
    "bpf_object__find_map_by_name": (_P, [_P, _STR]),
    "bpf_object__find_program_by_name": (_P, [_P, _STR]),
    "bpf_map__name": (_STR, [_P]),
    "bpf_map__fd": (_I, [_P]),
    "bpf_map__type": (_I, [_P]),
    "bpf_map__key_size": (_U32, [_P]),
    "bpf_map__value_size": (_U32, [_P]),
    "bpf_map__max_entries": (_U32, [_P]),
    "bpf_map__map_flags": (_U32, [_P]),
    "bpf_map__initial_value": (_P, [_P, _SZP]),
    "bpf_map__set_initial_value": (_I, [_P, _P, _SZ]),
    "bpf_map__set_max_entries": (_I, [_P, _U32]),
    "bpf_map__is_internal": (ctypes.c_bool, [_P]),
    "bpf_program__name": (_STR, [_P]),
    "bpf_program__section_name": (_STR, [_P]),
    "bpf_program__fd": (_I, [_P]),
    "bpf_program__type": (_I, [_P]),
    "bpf_program__autoload": (ctypes.c_bool, [_P]),
    "bpf_program__set_autoload": (_I, [_P, ctypes.c_bool]),
    "bpf_program__set_log_level": (_I, [_P, _U32]),
    "bpf_program__log_buf": (_P, [_P, _SZP]),
    "bpf_program__set_log_buf": (_I, [_P, _P, _SZ]),
    "bpf_program__attach": (_P, [_P]),
    "bpf_program__attach_uprobe_opts": (_P, [_P, _I, _STR, _SZ, _P]),
    "bpf_program__attach_usdt": (_P, [_P, _I, _STR, _STR, _STR, _P]),
    "bpf_program__attach_perf_event": (_P, [_P, _I]),
    "bpf_program__attach_xdp": (_P, [_P, _I]),
    "bpf_program__attach_cgroup": (_P, [_P, _I]),
    "bpf_program__attach_iter": (_P, [_P, _P]),
    "bpf_program__attach_tracepoint": (_P, [_P, _STR, _STR]),
    "bpf_program__attach_raw_tracepoint": (_P, [_P, _STR]),
    "bpf_link__destroy": (_I, [_P]),
    "bpf_link__fd": (_I, [_P]),
    "bpf_tc_hook_create": (_I, [_P]),
    "bpf_tc_hook_destroy": (_I, [_P]),
    "bpf_tc_attach": (_I, [_P, _P]),
    "bpf_tc_detach": (_I, [_P, _P]),
    "bpf_xdp_attach": (_I, [_I, _I, _U32, _P]),
    "bpf_xdp_detach": (_I, [_I, _U32, _P]),
    "bpf_iter_create": (_I, [_I]),
    "bpf_map_lookup_elem": (_I, [_I, _P, _P]),
    "bpf_map_update_elem": (_I, [_I, _P, _P, ctypes.c_uint64]),
    "bpf_map_delete_elem": (_I, [_I, _P]),
    "bpf_map_get_next_key": (_I, [_I, _P, _P]),
    "bpf_map_lookup_batch": (_I, [_I, _P, _P, _P, _P, ctypes.POINTER(_U32), _P]),
    "bpf_obj_pin": (_I, [_I, _STR]),
    "bpf_obj_get": (_I, [_STR]),
    "bpf_obj_get_info_by_fd": (_I, [_I, _P, ctypes.POINTER(_U32)]),
    "bpf_btf_get_fd_by_id": (_I, [_U32]),
    "libbpf_num_possible_cpus": (_I, []),
    "perf_buffer__new": (_P, [_I, _SZ, _P, _P, _P, _P]),
    "perf_buffer__free": (None, [_P]),
    "perf_buffer__epoll_fd": (_I, [_P]),
    "perf_buffer__poll": (_I, [_P, _I]),
    "perf_buffer__consume": (_I, [_P]),
}

# int (*)(enum libbpf_print_level, const char *fmt, va_list ap); on x86-64 a va_list
# argument is passed as a pointer, which vsnprintf accepts as is.
_PRINT_FN = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_void_p)
_LEVELS = {0: logging.WARNING, 1: logging.INFO, 2: logging.DEBUG}

_lock = threading.Lock()
_lib: ctypes.CDLL | None = None
_libc: ctypes.CDLL | None = None
_print_callback: Any = None  # keeps the CFUNCTYPE object alive as long as libbpf holds it
_captures = threading.local()


def libc() -> ctypes.CDLL:
    """The C library (for ``vsnprintf`` and ``syscall``), loaded on first use."""
    global _libc
    if _libc is None:
        handle = ctypes.CDLL(None, use_errno=True)
        handle.vsnprintf.restype = ctypes.c_int
        handle.vsnprintf.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_char_p,
                                     ctypes.c_void_p]
        handle.syscall.restype = ctypes.c_long
        handle.mallopt.restype = ctypes.c_int
        handle.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
        _libc = handle
    return _libc


_M_TRIM_THRESHOLD = -1  # glibc's mallopt parameter number


def keep_freed_heap(nbytes: int) -> None:
    """Let glibc keep up to ``nbytes`` of freed heap instead of returning it to the
    kernel after every batch (which page-faults it back in for the next one)."""
    libc().mallopt(_M_TRIM_THRESHOLD, nbytes)


def lib() -> ctypes.CDLL:
    """``libbpf.so.1`` with every used function declared; loaded on first use."""
    global _lib, _print_callback
    if _lib is not None:
        return _lib
    with _lock:
        if _lib is None:
            try:
                handle = ctypes.CDLL(LIBBPF_SONAME, use_errno=True)
            except OSError as exc:
                raise LibbpfError(f"load {LIBBPF_SONAME}: {exc}",
                                  errno=errno_mod.ENOENT) from None
            for name, (restype, argtypes) in _DECLARATIONS.items():
                func = getattr(handle, name)
                func.restype = restype
                func.argtypes = argtypes
            _print_callback = _PRINT_FN(_on_libbpf_print)
            handle.libbpf_set_print(ctypes.cast(_print_callback, ctypes.c_void_p))
            _lib = handle
    return _lib


def _on_libbpf_print(level: int, fmt: bytes | None, args: int | None) -> int:
    # Must never raise: an exception cannot cross back into C.
    try:
        py_level = _LEVELS.get(level, logging.DEBUG)
        stack = getattr(_captures, "stack", None)
        if fmt is None or (not stack and not logger.isEnabledFor(py_level)):
            return 0
        buf = ctypes.create_string_buffer(8192)
        libc().vsnprintf(buf, len(buf), fmt, args)
        text = buf.value.decode("utf-8", "replace").rstrip("\n")
        if stack:
            stack[-1].append((py_level, text))
        logger.log(py_level, "%s", text)
    except Exception:  # noqa: BLE001, S110 - see above
        pass
    return 0


@contextlib.contextmanager
def capture_messages() -> Iterator[list[tuple[int, str]]]:
    """Collect the libbpf messages printed by this thread inside the block.

    They still go to the logger as well; the list lets a caller explain a failure.
    """
    stack = getattr(_captures, "stack", None)
    if stack is None:
        stack = _captures.stack = []
    messages: list[tuple[int, str]] = []
    stack.append(messages)
    try:
        yield messages
    finally:
        stack.pop()


def check(result: int | None, action: str, error: type[LibbpfError] = LibbpfError) -> int:
    """The one checkpoint for libbpf returns.

    A ``None`` result is a NULL pointer (the cause is in ``errno``, libbpf 1.x strict
    mode); a negative integer is ``-errno``. Anything else is returned unchanged.
    """
    if result is None:
        raise error(action, errno=ctypes.get_errno() or errno_mod.EINVAL)
    if result < 0:
        raise error(action, errno=-result)
    return result
