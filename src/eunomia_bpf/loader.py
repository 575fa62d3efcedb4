"""ObjectSpec -> open -> set variables -> load -> attach -> :class:`RunningProgram`.

Every stage that fails closes what the earlier stages created before the error leaves
:func:`load`: no program, map or link stays in the kernel.
"""

from __future__ import annotations

import logging
import mmap
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING

from ._closing import Closing
from ._libbpf import BpfObject, BpfProgram, capture_messages
from .attach import AttachOptions, Link, attach_program, is_attachable, load_refusal
from .errors import ArgumentError, EunomiaError, LoadError, NotSupportedError, VerifierError

if TYPE_CHECKING:
    from .spec import ObjectSpec

__all__ = ["AttachOptions", "MapHandle", "ProgramHandle", "RunningProgram", "load"]

logger = logging.getLogger("eunomia_bpf.loader")

VERIFIER_LOG_SIZE = 1 << 20      # per program; the kernel keeps the tail if it overflows
PARALLEL_CLOSE_THRESHOLD = 2     # destroying a tracepoint link takes ~70 ms in the kernel
_MAX_CLOSE_THREADS = 16
_UNKNOWN_SECTION = re.compile(r"prog '([^']+)': missing BPF prog type, check ELF section "
                              r"name '([^']*)'")
_LOAD_FAILED = re.compile(r"prog '([^']+)': (?:BPF program load failed|failed to load)")


@dataclass(frozen=True)
class MapHandle:
    """A loaded map: what readers and samplers need to use its fd."""

    name: str
    fd: int
    map_type: int
    key_size: int
    value_size: int
    max_entries: int


@dataclass(frozen=True)
class ProgramHandle:
    """A loaded program."""

    name: str
    section: str
    fd: int
    prog_type: int


class RunningProgram(Closing):
    """Loaded (and attached) programs and their maps. ``close()`` is idempotent."""

    def __init__(self, spec: ObjectSpec, obj: BpfObject) -> None:
        self.spec = spec
        self._obj = obj
        self._links: list[Link] = []
        self._attach_options = AttachOptions()
        self._detached = False
        self._views: dict[str, tuple[mmap.mmap, memoryview]] = {}
        maps: dict[str, MapHandle] = {}
        for m in obj.maps():
            maps[m.name] = MapHandle(m.name, m.fd, m.map_type, m.key_size, m.value_size,
                                     m.max_entries)
        for map_spec in spec.maps:
            # Spec names are libbpf's names; the real names (".bss") find them as well.
            if map_spec.name not in maps and (found := obj.find_map(map_spec.name)):
                maps[map_spec.name] = maps[found.name]
        self.maps: Mapping[str, MapHandle] = MappingProxyType(maps)
        self.programs: Mapping[str, ProgramHandle] = MappingProxyType({
            p.name: ProgramHandle(p.name, p.section, p.fd, p.prog_type)
            for p in obj.programs() if p.fd >= 0})
        self._closed = False

    @property
    def links(self) -> Sequence[Link]:
        return tuple(self._links)

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def detached(self) -> bool:
        """True between :meth:`detach` and :meth:`reattach`."""
        return self._detached

    def detach(self) -> None:
        """Close every link; programs and maps (and what the maps hold) stay loaded."""
        if self._closed:
            raise EunomiaError(f"detach {self.spec.name}: the program is closed")
        links, self._links = self._links, []
        self._detached = True
        close_links(reversed(links))

    def reattach(self) -> None:
        """Attach the programs again after :meth:`detach`, as :func:`load` did."""
        if self._closed:
            raise EunomiaError(f"attach {self.spec.name}: the program is closed")
        if not self._detached:
            return
        try:
            _attach_all(self, self._obj, self.spec, self._attach_options)
        except BaseException:
            links, self._links = self._links, []
            close_links(reversed(links))
            raise
        self._detached = False

    def section_view(self, section: str) -> memoryview:
        """A live, read-only view of a data section (".bss", ".data", ".rodata").

        It maps the map's fd, since libbpf 1.1's initial value is a stale copy after
        load. Release the view (``del``) before :meth:`close`, or the map outlives it.
        """
        if self._closed:
            raise EunomiaError(f"view section {section}: program {self.spec.name} is closed")
        if section in self._views:
            return self._views[section][1]
        found = self._obj.find_map(section)
        if found is None:
            raise ArgumentError(f"view section {section}: {self.spec.name} has no such "
                                f"data section")
        size = found.value_size
        length = -(-size // mmap.PAGESIZE) * mmap.PAGESIZE
        try:
            area = mmap.mmap(found.fd, length, mmap.MAP_SHARED, mmap.PROT_READ)
        except OSError as exc:
            raise EunomiaError(f"view section {section}: {exc.strerror} (is the map "
                               f"mmapable?)") from None
        view = memoryview(area)[:size].toreadonly()
        self._views[section] = (area, view)
        return view

    def close(self) -> None:
        """Detach every link, then unload programs and maps. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        links, self._links = self._links, []
        close_links(reversed(links))
        for name, (area, view) in self._views.items():
            view.release()
            try:
                area.close()
            except BufferError:
                logger.warning("section %s of %s is still viewed; its map stays alive "
                               "until that view is released", name, self.spec.name)
        self._views.clear()
        self._obj.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"{len(self._links)} links"
        return f"<RunningProgram {self.spec.name} {state}>"


def _close_quietly(link: Link) -> None:
    try:
        link.close()
    except Exception as exc:  # noqa: BLE001 - closing must go on for the others
        logger.warning("detach %s program %s: %s", link.kind, link.program, exc)


def close_links(links: Iterable[Link]) -> None:
    """Close links, in parallel threads when there are many (ctypes drops the GIL)."""
    pending = list(links)
    if len(pending) < PARALLEL_CLOSE_THRESHOLD:
        for link in pending:
            _close_quietly(link)
        return
    from concurrent.futures import ThreadPoolExecutor

    # tc/xdp netlink detaches go in order (a hook is removed by whoever created it).
    ordered = [ln for ln in pending if not _parallel_safe(ln)]
    parallel = [ln for ln in pending if _parallel_safe(ln)]
    workers = min(_MAX_CLOSE_THREADS, len(parallel)) or 1
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="eunomia-close") as pool:
        list(pool.map(_close_quietly, parallel))
    for link in ordered:
        _close_quietly(link)


def _parallel_safe(link: Link) -> bool:
    return link.kind not in ("tc", "xdp")


def _write_variables(obj: BpfObject, spec: ObjectSpec,
                     values: Mapping[str, bytes]) -> None:
    variables = {v.name: v for v in spec.variables}
    for name, data in values.items():
        var = variables.get(name)
        if var is None:
            raise ArgumentError(f"set variable {name}: {spec.name} has no such variable")
        if len(data) != var.size:
            raise ArgumentError(f"set variable {name}: expected {var.size} bytes, "
                                f"got {len(data)}")
        section = obj.find_map(var.section)
        if section is None:
            raise ArgumentError(f"set variable {name}: object {spec.name} has no "
                                f"{var.section} section")
        section.write_initial_value(var.offset, bytes(data))


def _sections(spec: ObjectSpec, programs: Iterable[BpfProgram]) -> dict[str, str]:
    by_spec = {p.name: p.section for p in spec.programs}
    return {p.name: by_spec.get(p.name) or p.section for p in programs}


def _load(obj: BpfObject, spec: ObjectSpec) -> None:
    programs = [p for p in obj.programs() if p.autoload]
    for prog in programs:
        prog.capture_log(VERIFIER_LOG_SIZE)
    try:
        with capture_messages() as messages:
            obj.load()
    except LoadError as exc:
        raise _explain_load_failure(exc, spec, programs, messages) from None
    finally:
        for prog in programs:
            prog.release_log()


def _explain_load_failure(exc: LoadError, spec: ObjectSpec, programs: list[BpfProgram],
                          messages: list[tuple[int, str]]) -> EunomiaError:
    sections = _sections(spec, programs)
    failed_names = [m.group(1) for _, line in messages if (m := _LOAD_FAILED.search(line))]
    for prog in programs:
        if prog.log.strip():
            return VerifierError(prog.name, prog.log, errno=exc.errno)
    candidates = [p for p in programs if p.name in failed_names] or programs
    for prog in candidates:
        refusal = load_refusal(prog.name, sections[prog.name], exc.errno, prog.log)
        if refusal is not None:
            return refusal
    for _, line in messages:
        if (m := _UNKNOWN_SECTION.search(line)) is not None:
            return LoadError(f"load program {m.group(1)}: unknown attach type "
                             f"(section '{m.group(2)}' names no BPF program type)")
    if failed_names:
        return LoadError(f"load program {failed_names[0]}", errno=exc.errno)
    # Not a program: a map, BTF or relocation. libbpf's last warning says which.
    warnings = [text for level, text in messages if level >= logging.WARNING
                and "failed to load object" not in text]
    if warnings:
        cause = warnings[-1].removeprefix("libbpf: ").strip().rstrip(":")
        return LoadError(f"load object {spec.name}: {cause}", errno=exc.errno)
    return exc


def _attach_all(running: RunningProgram, obj: BpfObject, spec: ObjectSpec,
                options: AttachOptions) -> None:
    specs = {p.name: p for p in spec.programs}
    for prog in obj.programs():
        if not prog.autoload:
            continue
        prog_spec = specs.get(prog.name)
        if prog_spec is not None:
            if not prog_spec.link:
                continue
            section, params = prog_spec.section or prog.section, prog_spec.params
        elif specs or not is_attachable(prog.section):
            continue  # the package lists its programs and leaves this one alone
        else:
            section, params = prog.section, {}
        running._links.extend(attach_program(prog, section, params, options))


KERNEL_BTF = "/sys/kernel/btf/vmlinux"


def _check_kernel_btf(spec: ObjectSpec, btf_path: str | None) -> None:
    if btf_path is not None:
        if not os.path.isfile(btf_path):
            raise LoadError(f"load {spec.name}: BTF file {btf_path} does not exist")
        return
    if not os.path.exists(KERNEL_BTF):
        raise NotSupportedError(
            f"load {spec.name}: this kernel exposes no BTF ({KERNEL_BTF} is missing); "
            f"CO-RE needs a kernel built with CONFIG_DEBUG_INFO_BTF=y, or the kernel's "
            f"BTF given with --btf FILE", feature="kernel BTF")


def load(spec: ObjectSpec, values: Mapping[str, bytes] | None = None, *,
         attach: AttachOptions | None = None, btf_path: str | None = None,
         before_attach: Callable[[RunningProgram], None] | None = None) -> RunningProgram:
    """Open ``spec.object``, set ``values`` (variable name -> encoded bytes), load, attach.

    ``before_attach`` runs between load and attach (e.g. to open perf buffers, which
    only receive events once their per-CPU rings exist).

    Programs whose spec says ``link: false`` are loaded but not attached. Errors:
    :class:`ArgumentError` (bad value), :class:`VerifierError` (with the log),
    :class:`NotSupportedError` (the kernel lacks the feature), :class:`LoadError`,
    :class:`AttachError`.
    """
    _check_kernel_btf(spec, btf_path)
    obj = BpfObject.open_mem(spec.object, spec.name, btf_path=btf_path)
    try:
        _write_variables(obj, spec, values or {})
        _load(obj, spec)
        running = RunningProgram(spec, obj)
    except BaseException:
        obj.close()
        raise
    try:
        if before_attach is not None:
            before_attach(running)
        running._attach_options = attach or AttachOptions()
        _attach_all(running, obj, spec, running._attach_options)
    except BaseException:
        running.close()
        raise
    return running
