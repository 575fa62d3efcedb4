"""Thin, ctypes-free-to-callers wrappers over libbpf objects, programs, maps and links."""

from __future__ import annotations

import ctypes
import errno as errno_mod
from collections.abc import Iterator

from ..errors import AttachError, LibbpfError, LoadError
from ._lib import check, lib

__all__ = [
    "BpfLink",
    "BpfMap",
    "BpfObject",
    "BpfProgram",
    "TcHook",
    "iter_create",
    "map_delete",
    "map_lookup",
    "map_next_key",
    "map_update",
    "num_possible_cpus",
    "tc_attach",
    "tc_detach",
    "tc_hook_create",
    "tc_hook_destroy",
    "xdp_attach",
    "xdp_detach",
]


class _OpenOpts(ctypes.Structure):
    _fields_ = [
        ("sz", ctypes.c_size_t),
        ("object_name", ctypes.c_char_p),
        ("relaxed_maps", ctypes.c_bool),
        ("pin_root_path", ctypes.c_char_p),
        ("_attach_prog_fd", ctypes.c_uint32),
        ("kconfig", ctypes.c_char_p),
        ("btf_custom_path", ctypes.c_char_p),
        ("kernel_log_buf", ctypes.c_void_p),
        ("kernel_log_size", ctypes.c_size_t),
        ("kernel_log_level", ctypes.c_uint32),
    ]


class _UprobeOpts(ctypes.Structure):
    _fields_ = [
        ("sz", ctypes.c_size_t),
        ("ref_ctr_offset", ctypes.c_size_t),
        ("bpf_cookie", ctypes.c_uint64),
        ("retprobe", ctypes.c_bool),
        ("func_name", ctypes.c_char_p),
    ]


class _TcHookStruct(ctypes.Structure):
    _fields_ = [
        ("sz", ctypes.c_size_t),
        ("ifindex", ctypes.c_int),
        ("attach_point", ctypes.c_int),
        ("parent", ctypes.c_uint32),
    ]


class _TcOpts(ctypes.Structure):
    _fields_ = [
        ("sz", ctypes.c_size_t),
        ("prog_fd", ctypes.c_int),
        ("flags", ctypes.c_uint32),
        ("prog_id", ctypes.c_uint32),
        ("handle", ctypes.c_uint32),
        ("priority", ctypes.c_uint32),
    ]


def _text(raw: bytes | None) -> str:
    return raw.decode("utf-8", "replace") if raw else ""


class BpfLink:
    """An owned ``struct bpf_link *``; :meth:`destroy` detaches it (once)."""

    def __init__(self, ptr: int) -> None:
        self._ptr: int | None = ptr

    @property
    def fd(self) -> int:
        if self._ptr is None:
            return -1
        return int(lib().bpf_link__fd(self._ptr))

    def destroy(self) -> None:
        ptr, self._ptr = self._ptr, None
        if ptr is not None:
            check(lib().bpf_link__destroy(ptr), "destroy link")


class BpfMap:
    """A borrowed ``struct bpf_map *``; valid while its :class:`BpfObject` is open."""

    def __init__(self, ptr: int) -> None:
        self._ptr = ptr

    @property
    def name(self) -> str:
        return _text(lib().bpf_map__name(self._ptr))

    @property
    def fd(self) -> int:
        return int(lib().bpf_map__fd(self._ptr))

    @property
    def map_type(self) -> int:
        return int(lib().bpf_map__type(self._ptr))

    @property
    def key_size(self) -> int:
        return int(lib().bpf_map__key_size(self._ptr))

    @property
    def value_size(self) -> int:
        return int(lib().bpf_map__value_size(self._ptr))

    @property
    def max_entries(self) -> int:
        return int(lib().bpf_map__max_entries(self._ptr))

    @property
    def map_flags(self) -> int:
        return int(lib().bpf_map__map_flags(self._ptr))

    def set_max_entries(self, count: int) -> None:
        check(lib().bpf_map__set_max_entries(self._ptr, count),
              f"set max_entries of map {self.name}")

    def initial_value(self) -> bytes:
        """A copy of the map's initial value (stale after load in libbpf 1.1)."""
        size = ctypes.c_size_t(0)
        ptr = lib().bpf_map__initial_value(self._ptr, ctypes.byref(size))
        if not ptr:
            return b""
        return ctypes.string_at(ptr, size.value)

    def write_initial_value(self, offset: int, data: bytes) -> None:
        """Overwrite ``data`` at ``offset`` of the initial value (before load only)."""
        size = ctypes.c_size_t(0)
        ptr = check(lib().bpf_map__initial_value(self._ptr, ctypes.byref(size)),
                    f"read initial value of map {self.name}")
        if offset < 0 or offset + len(data) > size.value:
            raise LibbpfError(f"set initial value of map {self.name}: {len(data)} bytes at "
                              f"offset {offset} do not fit in {size.value}",
                              errno=errno_mod.ERANGE)
        ctypes.memmove(ptr + offset, data, len(data))


class BpfProgram:
    """A borrowed ``struct bpf_program *``; valid while its :class:`BpfObject` is open."""

    def __init__(self, ptr: int) -> None:
        self._ptr = ptr
        self._log_buf: ctypes.Array[ctypes.c_char] | None = None

    @property
    def name(self) -> str:
        return _text(lib().bpf_program__name(self._ptr))

    @property
    def section(self) -> str:
        return _text(lib().bpf_program__section_name(self._ptr))

    @property
    def fd(self) -> int:
        return int(lib().bpf_program__fd(self._ptr))

    @property
    def prog_type(self) -> int:
        return int(lib().bpf_program__type(self._ptr))

    @property
    def autoload(self) -> bool:
        return bool(lib().bpf_program__autoload(self._ptr))

    def set_autoload(self, enabled: bool) -> None:
        check(lib().bpf_program__set_autoload(self._ptr, enabled),
              f"set autoload of program {self.name}")

    def capture_log(self, size: int, level: int = 0) -> None:
        """Give the program its own verifier log buffer (before load).

        With ``level`` 0 libbpf loads without a log and, on failure, retries at level 1
        into this buffer, so a successful load costs nothing extra.
        """
        self._log_buf = ctypes.create_string_buffer(size)
        check(lib().bpf_program__set_log_buf(self._ptr, ctypes.addressof(self._log_buf), size),
              f"set log buffer of program {self.name}")
        check(lib().bpf_program__set_log_level(self._ptr, level),
              f"set log level of program {self.name}")

    @property
    def log(self) -> str:
        """The verifier log captured by :meth:`capture_log` ("" if none)."""
        if self._log_buf is None:
            return ""
        return self._log_buf.value.decode("utf-8", "replace")

    def release_log(self) -> None:
        """Drop the log buffer (after load) so that its memory is freed."""
        if self._log_buf is not None:
            lib().bpf_program__set_log_buf(self._ptr, None, 0)
            self._log_buf = None

    # -- attach ---------------------------------------------------------------------
    def _link(self, ptr: int | None, what: str) -> BpfLink:
        return BpfLink(check(ptr, f"attach program {self.name}{what}", AttachError))

    def attach(self) -> BpfLink:
        """Attach by section name (libbpf auto-attach)."""
        return self._link(lib().bpf_program__attach(self._ptr), "")

    def attach_perf_event(self, perf_fd: int) -> BpfLink:
        """Attach to an open perf event; the link then owns (and closes) ``perf_fd``."""
        return self._link(lib().bpf_program__attach_perf_event(self._ptr, perf_fd),
                          " to perf event")

    def attach_xdp(self, ifindex: int) -> BpfLink:
        return self._link(lib().bpf_program__attach_xdp(self._ptr, ifindex),
                          f" to xdp of ifindex {ifindex}")

    def attach_cgroup(self, cgroup_fd: int) -> BpfLink:
        return self._link(lib().bpf_program__attach_cgroup(self._ptr, cgroup_fd),
                          " to cgroup")

    def attach_iter(self) -> BpfLink:
        return self._link(lib().bpf_program__attach_iter(self._ptr, None), " as iterator")

    def attach_tracepoint(self, category: str, name: str) -> BpfLink:
        return self._link(lib().bpf_program__attach_tracepoint(
            self._ptr, category.encode(), name.encode()), f" to tracepoint {category}/{name}")

    def attach_raw_tracepoint(self, name: str) -> BpfLink:
        return self._link(lib().bpf_program__attach_raw_tracepoint(self._ptr, name.encode()),
                          f" to raw tracepoint {name}")

    def attach_uprobe(self, binary_path: str, func_name: str | None = None, offset: int = 0,
                      *, retprobe: bool = False, pid: int = -1) -> BpfLink:
        opts = _UprobeOpts(sz=ctypes.sizeof(_UprobeOpts), retprobe=retprobe,
                           func_name=func_name.encode() if func_name else None)
        ptr = lib().bpf_program__attach_uprobe_opts(
            self._ptr, pid, binary_path.encode(), offset, ctypes.byref(opts))
        return self._link(ptr, f" to {binary_path}:{func_name or hex(offset)}")

    def attach_usdt(self, binary_path: str, provider: str, name: str,
                    *, pid: int = -1) -> BpfLink:
        ptr = lib().bpf_program__attach_usdt(self._ptr, pid, binary_path.encode(),
                                             provider.encode(), name.encode(), None)
        return self._link(ptr, f" to usdt {binary_path}:{provider}:{name}")


class BpfObject:
    """An owned ``struct bpf_object *``: open from memory, load, close (idempotent)."""

    def __init__(self, ptr: int, name: str, keepalive: object) -> None:
        self._ptr: int | None = ptr
        self.name = name
        self._keepalive = keepalive

    @classmethod
    def open_mem(cls, elf: bytes, name: str, *, btf_path: str | None = None) -> BpfObject:
        """Open an object from memory; ``btf_path``: the kernel's BTF for CO-RE when the
        kernel does not expose /sys/kernel/btf/vmlinux."""
        buf = ctypes.create_string_buffer(elf, len(elf))
        c_name = name.encode()
        c_btf = btf_path.encode() if btf_path else None
        opts = _OpenOpts(sz=ctypes.sizeof(_OpenOpts), object_name=c_name,
                         btf_custom_path=c_btf)
        ptr = check(lib().bpf_object__open_mem(buf, len(elf), ctypes.byref(opts)),
                    f"open object {name}", LoadError)
        return cls(ptr, name, (buf, c_name, c_btf))

    @property
    def _handle(self) -> int:
        if self._ptr is None:
            raise LibbpfError(f"use object {self.name}: it is closed", errno=errno_mod.EBADF)
        return self._ptr

    @property
    def closed(self) -> bool:
        return self._ptr is None

    def programs(self) -> Iterator[BpfProgram]:
        prev = None
        while True:
            prev = lib().bpf_object__next_program(self._handle, prev)
            if not prev:
                return
            yield BpfProgram(prev)

    def maps(self) -> Iterator[BpfMap]:
        prev = None
        while True:
            prev = lib().bpf_object__next_map(self._handle, prev)
            if not prev:
                return
            yield BpfMap(prev)

    def find_map(self, name: str) -> BpfMap | None:
        """By libbpf name, or by real name for internal maps (".rodata", ".bss")."""
        ptr = lib().bpf_object__find_map_by_name(self._handle, name.encode())
        return BpfMap(ptr) if ptr else None

    def load(self) -> None:
        check(lib().bpf_object__load(self._handle), f"load object {self.name}", LoadError)

    def close(self) -> None:
        ptr, self._ptr = self._ptr, None
        if ptr is not None:
            lib().bpf_object__close(ptr)
            self._keepalive = None


# -- tc (netlink, no bpf_link) -------------------------------------------------------

class TcHook:
    """A clsact hook description: ``attach_point`` is 1 (ingress) or 2 (egress)."""

    def __init__(self, ifindex: int, attach_point: int) -> None:
        self.ifindex = ifindex
        self.attach_point = attach_point

    def _struct(self, attach_point: int | None = None) -> _TcHookStruct:
        return _TcHookStruct(sz=ctypes.sizeof(_TcHookStruct), ifindex=self.ifindex,
                             attach_point=self.attach_point if attach_point is None
                             else attach_point)


def tc_hook_create(hook: TcHook) -> bool:
    """Create the clsact qdisc; False if it already existed (someone else owns it)."""
    ret = lib().bpf_tc_hook_create(ctypes.byref(hook._struct()))
    if ret == -errno_mod.EEXIST:
        return False
    check(ret, f"create tc hook on ifindex {hook.ifindex}", AttachError)
    return True


def tc_hook_destroy(hook: TcHook) -> None:
    """Remove the whole clsact qdisc (ingress and egress)."""
    check(lib().bpf_tc_hook_destroy(ctypes.byref(hook._struct(1 | 2))),
          f"destroy tc hook on ifindex {hook.ifindex}")


def tc_attach(hook: TcHook, prog_fd: int, handle: int, priority: int) -> tuple[int, int]:
    """Attach a filter; returns the (handle, priority) the kernel chose."""
    opts = _TcOpts(sz=ctypes.sizeof(_TcOpts), prog_fd=prog_fd, handle=handle,
                   priority=priority)
    check(lib().bpf_tc_attach(ctypes.byref(hook._struct()), ctypes.byref(opts)),
          f"attach tc filter on ifindex {hook.ifindex}", AttachError)
    return int(opts.handle), int(opts.priority)


def tc_detach(hook: TcHook, handle: int, priority: int) -> None:
    opts = _TcOpts(sz=ctypes.sizeof(_TcOpts), handle=handle, priority=priority)
    check(lib().bpf_tc_detach(ctypes.byref(hook._struct()), ctypes.byref(opts)),
          f"detach tc filter on ifindex {hook.ifindex}")


# -- xdp by netlink (used when the package asks for flags) ----------------------------

def xdp_attach(ifindex: int, prog_fd: int, flags: int) -> None:
    check(lib().bpf_xdp_attach(ifindex, prog_fd, flags, None),
          f"attach xdp to ifindex {ifindex}", AttachError)


def xdp_detach(ifindex: int, flags: int) -> None:
    check(lib().bpf_xdp_detach(ifindex, flags, None), f"detach xdp from ifindex {ifindex}")


# -- misc ---------------------------------------------------------------------------

def iter_create(link_fd: int) -> int:
    """A new readable fd for an iterator link (each read walks the iterator once)."""
    return check(lib().bpf_iter_create(link_fd), "create iterator")


def num_possible_cpus() -> int:
    return check(lib().libbpf_num_possible_cpus(), "count possible cpus")


def map_lookup(fd: int, key: bytes, value_size: int) -> bytes | None:
    """The value under ``key`` or None if absent (per-CPU maps: pass the total size)."""
    value = ctypes.create_string_buffer(value_size)
    ret = lib().bpf_map_lookup_elem(fd, key, value)
    if ret == -errno_mod.ENOENT:
        return None
    check(ret, "look up map element")
    return value.raw


def map_update(fd: int, key: bytes, value: bytes, flags: int = 0) -> None:
    check(lib().bpf_map_update_elem(fd, key, value, flags), "update map element")


def map_delete(fd: int, key: bytes) -> bool:
    """Delete ``key``; False if it was absent."""
    ret = lib().bpf_map_delete_elem(fd, key)
    if ret == -errno_mod.ENOENT:
        return False
    check(ret, "delete map element")
    return True


def map_next_key(fd: int, key: bytes | None, key_size: int) -> bytes | None:
    """The key after ``key`` (the first key for None); None at the end."""
    out = ctypes.create_string_buffer(key_size)
    ret = lib().bpf_map_get_next_key(fd, key, out)
    if ret == -errno_mod.ENOENT:
        return None
    check(ret, "iterate map keys")
    return out.raw
