"""Stack traces: which event fields are stacks, and instruction pointers -> function names.

A program records stacks in one of two ways, and a package says which fields are stacks
with the public eunomia-bpf convention, a doc comment on the export map::

    /// @intepreter {"stack_trace": {}}
    struct { __uint(type, BPF_MAP_TYPE_RINGBUF); ... } events SEC(".maps");

(ecc copies it to the map's meta as ``"intepreter": {"stack_trace": {}}``, spelled so;
``"interpreter"`` is accepted too.) Without the mark, fields named ``kstack_id``,
``ustack_id`` or ``stack_id`` are stacks when the package has a stack trace map.

- **stack ids** (``bpf_get_stackid``): an integer field ``X_id`` is a key of a
  ``BPF_MAP_TYPE_STACK_TRACE`` map, whose value holds the instruction pointers; negative
  ids are errors (no stack). The map is read while the program runs.
- **inline stacks** (``bpf_get_stack``, the public profile example): an array of u64
  ``X`` with a sibling ``X_sz`` holding the number of bytes written.

Each becomes a column ``X`` of function names, innermost frame first. Kernel addresses
(the upper half of the address space) are looked up in ``/proc/kallsyms``; user addresses
through ``/proc/PID/maps`` in the ELF symbols (``.symtab``, else ``.dynsym``) of the
mapped file. A frame in a file but without a symbol is ``file+0xOFFSET``, one outside
any file its address in hex; every frame of a process that is gone is ``[unknown]``. User stacks are only as deep as frame pointers allow: the
kernel walks the ``rbp`` chain, so code built without them (most distribution packages,
CPython's own frames) yields short or broken user stacks.

The parsing parts (:class:`KernelSymbols`, :class:`ElfSymbols`, :func:`parse_maps`,
:func:`stack_plans`) are pure; :class:`StackResolver` reads the stack map through the
libbpf binding and ``/proc``.
"""

from __future__ import annotations

import bisect
import os
import struct
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .btf import Array, Int, Struct, Union
from .errors import EunomiaError
from .spec import MapType, ObjectSpec

if TYPE_CHECKING:
    import numpy as np

__all__ = ["ElfSymbols", "KernelSymbols", "Region", "StackField", "StackPlan",
           "StackResolver", "Symbolizer", "parse_maps", "stack_plans"]

UNKNOWN = "[unknown]"
# x86-64 and arm64 kernels live in the upper half of the address space.
KERNEL_START = 1 << 63
# meta keys of the public convention (ecc keeps the doc tag's spelling)
_INTERPRETER_KEYS = ("intepreter", "interpreter")
# the names that mark stack ids without the convention
_FALLBACK_ID_FIELDS = ("kstack_id", "ustack_id", "stack_id")
# symbol types of /proc/kallsyms that are code
_KALLSYMS_TEXT = frozenset("tTwW")
# fields that name the process a user stack belongs to
_PID_FIELDS = ("pid", "tgid")
_MAX_PROCESSES = 4096


# -- kernel symbols --------------------------------------------------------------------
class KernelSymbols:
    """``/proc/kallsyms`` sorted by address; :meth:`lookup` bisects."""

    def __init__(self, entries: Iterable[tuple[int, str]]) -> None:
        pairs: dict[int, str] = {}
        for address, name in entries:
            pairs.setdefault(address, name)  # the first name of an address wins
        ordered = sorted(pairs.items())
        self._addresses = [a for a, _ in ordered]
        self._names = [n for _, n in ordered]

    @classmethod
    def from_text(cls, text: str) -> KernelSymbols:
        """Parse kallsyms lines ``ADDRESS TYPE NAME [MODULE]``; code symbols only.
        All-zero addresses (``kptr_restrict``, not root) are dropped."""
        entries = []
        for line in text.splitlines():
            parts = line.split()
            if len(parts) < 3 or parts[1] not in _KALLSYMS_TEXT:
                continue
            try:
                address = int(parts[0], 16)
            except ValueError:
                continue
            if address:
                entries.append((address, parts[2]))
        return cls(entries)

    @classmethod
    def load(cls, path: str = "/proc/kallsyms") -> KernelSymbols:
        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                return cls.from_text(f.read())
        except OSError:
            return cls(())

    def __len__(self) -> int:
        return len(self._addresses)

    def lookup(self, address: int) -> str | None:
        i = bisect.bisect_right(self._addresses, address) - 1
        return self._names[i] if i >= 0 else None


# -- ELF symbols -----------------------------------------------------------------------
@dataclass(frozen=True)
class _Segment:
    offset: int
    vaddr: int
    filesz: int


class ElfSymbols:
    """Function symbols of one ELF file, looked up by file offset (what a mapping gives).

    A file offset becomes a virtual address through the ``PT_LOAD`` segment that holds
    it (``vaddr = offset - p_offset + p_vaddr``), which is right for executables, PIE
    and shared objects alike.
    """

    def __init__(self, symbols: Iterable[tuple[int, int, str]],
                 segments: Iterable[tuple[int, int, int]] = ()) -> None:
        ordered = sorted(set(symbols))
        self._starts = [s for s, _, _ in ordered]
        self._sizes = [z for _, z, _ in ordered]
        self._names = [n for _, _, n in ordered]
        self._segments = [_Segment(*s) for s in segments]

    @classmethod
    def from_file(cls, path: str) -> ElfSymbols:
        """Read ``.symtab`` (or, when stripped, ``.dynsym``) and the load segments;
        EunomiaError if the file is not a readable ELF."""
        from elftools.common.exceptions import ELFError
        from elftools.elf.elffile import ELFFile
        from elftools.elf.sections import SymbolTableSection

        try:
            with open(path, "rb") as f:
                elf = ELFFile(f)
                segments = [(seg["p_offset"], seg["p_vaddr"], seg["p_filesz"])
                            for seg in elf.iter_segments() if seg["p_type"] == "PT_LOAD"]
                symbols: list[tuple[int, int, str]] = []
                for section_name in (".symtab", ".dynsym"):
                    table = elf.get_section_by_name(section_name)
                    if not isinstance(table, SymbolTableSection):
                        continue
                    for sym in table.iter_symbols():
                        if (sym["st_info"]["type"] in ("STT_FUNC", "STT_GNU_IFUNC")
                                and sym["st_shndx"] != "SHN_UNDEF" and sym["st_value"]
                                and sym.name):
                            symbols.append((sym["st_value"], sym["st_size"], sym.name))
                    if symbols:
                        break
        except (OSError, ELFError, ValueError, KeyError) as exc:
            raise EunomiaError(f"read symbols of {path}: {exc}") from None
        return cls(symbols, segments)

    def vaddr(self, file_offset: int) -> int:
        for seg in self._segments:
            if seg.offset <= file_offset < seg.offset + seg.filesz:
                return file_offset - seg.offset + seg.vaddr
        return file_offset

    def lookup(self, file_offset: int) -> str | None:
        return self.lookup_vaddr(self.vaddr(file_offset))

    def lookup_vaddr(self, vaddr: int) -> str | None:
        i = bisect.bisect_right(self._starts, vaddr) - 1
        if i < 0:
            return None
        size = self._sizes[i]
        if size and vaddr >= self._starts[i] + size:
            return None
        return self._names[i]


# -- process mappings ------------------------------------------------------------------
@dataclass(frozen=True)
class Region:
    """One line of ``/proc/PID/maps``."""

    start: int
    end: int
    offset: int
    path: str


def parse_maps(text: str) -> list[Region]:
    """Executable mappings of a ``/proc/PID/maps`` text, by start address."""
    out = []
    for line in text.splitlines():
        parts = line.split(maxsplit=5)
        if len(parts) < 5 or "x" not in parts[1]:
            continue
        start, _, end = parts[0].partition("-")
        try:
            out.append(Region(int(start, 16), int(end, 16), int(parts[2], 16),
                                parts[5].strip() if len(parts) > 5 else ""))
        except ValueError:
            continue
    out.sort(key=lambda m: m.start)
    return out


class _Process:
    def __init__(self, pid: int, mappings: list[Region]) -> None:
        self.pid = pid
        self.mappings = mappings
        self.starts = [m.start for m in mappings]

    def find(self, address: int) -> Region | None:
        i = bisect.bisect_right(self.starts, address) - 1
        if i >= 0 and address < self.mappings[i].end:
            return self.mappings[i]
        return None


# -- symbolizer ------------------------------------------------------------------------
class Symbolizer:
    """Addresses -> names, with caches: kallsyms once, each ELF file once per
    (path, inode, mtime), each process's mappings until an address misses them."""

    def __init__(self, *, kallsyms: Callable[[], KernelSymbols] = KernelSymbols.load,
                 proc: str = "/proc") -> None:
        self._load_kallsyms = kallsyms
        self._kernel: KernelSymbols | None = None
        self._proc = proc
        self._processes: dict[int, _Process | None] = {}
        self._elves: dict[tuple[str, int, int, int], ElfSymbols | None] = {}

    @property
    def kernel(self) -> KernelSymbols:
        if self._kernel is None:
            self._kernel = self._load_kallsyms()
        return self._kernel

    def frames(self, pid: int | None, addresses: Sequence[int]) -> list[str]:
        """Names of a stack's frames, innermost first. Return addresses (all frames but
        the first) are looked up one byte back, inside the calling instruction, so that
        a call at the very end of a function names that function."""
        out = []
        for i, address in enumerate(addresses):
            probe = address - 1 if i and address else address
            if address >= KERNEL_START:
                out.append(self.kernel.lookup(probe) or f"{address:#x}")
            else:
                out.append(self._user(pid, probe, f"{address:#x}"))
        return out

    def _user(self, pid: int | None, probe: int, shown: str) -> str:
        if not pid or pid <= 0:
            return shown
        process = self._process(pid)
        if process is None:
            return UNKNOWN
        mapping = process.find(probe)
        if mapping is None:  # mapped since we read the maps (dlopen)?
            process = self._process(pid, refresh=True)
            if process is None:
                return UNKNOWN
            mapping = process.find(probe)
        if mapping is None:
            return shown
        if not mapping.path.startswith("/"):
            return mapping.path if mapping.path.startswith("[") else shown  # [vdso]
        symbols = self._elf(pid, mapping)
        offset = probe - mapping.start + mapping.offset
        name = symbols.lookup(offset) if symbols else None
        # no symbol (a static function of a stripped library): the file and offset are
        # the same in every process, where the address is not (ASLR)
        return name or f"{os.path.basename(mapping.path)}+{offset:#x}"

    def _process(self, pid: int, *, refresh: bool = False) -> _Process | None:
        if not refresh and pid in self._processes:
            return self._processes[pid]
        if len(self._processes) > _MAX_PROCESSES:
            self._processes.clear()
        try:
            with open(f"{self._proc}/{pid}/maps", encoding="utf-8", errors="replace") as f:
                process: _Process | None = _Process(pid, parse_maps(f.read()))
        except OSError:
            process = None  # exited (or never visible to us)
        self._processes[pid] = process
        return process

    def _elf(self, pid: int, mapping: Region) -> ElfSymbols | None:
        # map_files/ reaches the very file mapped, across mount namespaces and after
        # deletion; the path through the process's root is the fallback.
        candidates = (f"{self._proc}/{pid}/map_files/{mapping.start:x}-{mapping.end:x}",
                      f"{self._proc}/{pid}/root{mapping.path}", mapping.path)
        for path in candidates:
            try:
                st = os.stat(path)
            except OSError:
                continue
            key = (mapping.path, st.st_dev, st.st_ino, st.st_mtime_ns)
            if key not in self._elves:
                try:
                    self._elves[key] = ElfSymbols.from_file(path)
                except EunomiaError:
                    self._elves[key] = None
            return self._elves[key]
        return None


# -- which fields are stacks -----------------------------------------------------------
@dataclass(frozen=True)
class StackField:
    """An event field that holds a stack: ``kind`` ``"id"`` (a key of the stack map) or
    ``"inline"`` (u64 addresses, ``size_field`` says how many bytes are valid)."""

    field: str
    column: str
    kind: str
    size_field: str | None = None


@dataclass(frozen=True)
class StackPlan:
    """How to turn one export map's events into stacks."""

    export_map: str
    fields: tuple[StackField, ...]
    stack_map: str | None
    pid_field: str | None

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(f.column for f in self.fields)


def _interpreter(meta: Mapping[str, Any]) -> Mapping[str, Any] | None:
    for key in _INTERPRETER_KEYS:
        value = meta.get(key)
        if isinstance(value, Mapping) and "stack_trace" in value:
            options = value["stack_trace"]
            return options if isinstance(options, Mapping) else {}
    return None


def stack_plans(spec: ObjectSpec, skel: Mapping[str, Any]) -> list[StackPlan]:
    """The stack fields of each export map (pure: spec and the package's ``bpf_skel``)."""
    map_meta = {m.get("name"): m for m in skel.get("maps") or [] if isinstance(m, Mapping)}
    stack_maps = [m.name for m in spec.maps if m.map_type == MapType.STACK_TRACE]
    plans = []
    for export in spec.exports:
        options = _interpreter(map_meta.get(export.map_name) or {})
        t = spec.btf[spec.btf.resolve(export.type_id)]
        if not isinstance(t, (Struct, Union)):
            continue
        members = {m.name: spec.btf[spec.btf.resolve(m.type)] for m in t.members}
        fields: list[StackField] = []
        stack_map = options.get("map") if options else None
        if not isinstance(stack_map, str) or stack_map not in stack_maps:
            stack_map = stack_maps[0] if stack_maps else None
        for name, mt in members.items():
            if isinstance(mt, Int) and stack_map is not None and (
                    name in _FALLBACK_ID_FIELDS
                    or (options is not None and name.endswith("stack_id"))):
                column = name.removesuffix("_id")
                fields.append(StackField(name, column, "id"))
            elif (options is not None and isinstance(mt, Array) and f"{name}_sz" in members
                  and spec.btf.size_of(mt.type) == 8):
                fields.append(StackField(name, name, "inline", f"{name}_sz"))
        if fields:
            pid_field = next((p for p in _PID_FIELDS if p in members), None)
            plans.append(StackPlan(export.map_name, tuple(fields), stack_map, pid_field))
    return plans


# -- the running part ------------------------------------------------------------------
class StackResolver:
    """Reads stack ids from the live stack map and symbolizes them, batch by batch."""

    def __init__(self, plans: Sequence[StackPlan], maps: Mapping[str, Any],
                 symbolizer: Symbolizer | None = None) -> None:
        self.plans = {p.export_map: p for p in plans}
        self.symbolizer = symbolizer or Symbolizer()
        self._maps = maps
        self._addresses: dict[tuple[str, int], tuple[int, ...]] = {}
        self._names: dict[tuple[Any, ...], list[str]] = {}

    def columns(self, export_map: str, records: np.ndarray[Any, Any]) -> dict[str, list[Any]]:
        """Stack columns (lists of names, innermost first) for a batch of records."""
        plan = self.plans.get(export_map)
        if plan is None or not len(records):
            return {}
        pids: list[int | None] = (records[plan.pid_field].tolist() if plan.pid_field
                                  else [None] * len(records))
        out: dict[str, list[Any]] = {}
        for f in plan.fields:
            if f.kind == "id":
                assert plan.stack_map is not None
                out[f.column] = [self._by_id(plan.stack_map, int(i), pid)
                                 for i, pid in zip(records[f.field].tolist(), pids)]
            else:
                assert f.size_field is not None
                sizes = records[f.size_field].tolist()
                stacks = records[f.field].tolist()
                out[f.column] = [self.symbolizer.frames(pid, stack[:max(size, 0) // 8])
                                 for stack, size, pid in zip(stacks, sizes, pids)]
        return out

    def _by_id(self, map_name: str, stack_id: int, pid: int | None) -> list[str]:
        if stack_id < 0:
            return []
        addresses = self._read(map_name, stack_id)
        user = any(a < KERNEL_START for a in addresses)
        key = (map_name, stack_id, pid) if user else (map_name, stack_id)
        names = self._names.get(key)
        if names is None:
            names = self._names[key] = self.symbolizer.frames(pid, addresses)
        return names

    def _read(self, map_name: str, stack_id: int) -> tuple[int, ...]:
        # Without BPF_F_REUSE_STACKID an id keeps its stack until deleted: cache it.
        key = (map_name, stack_id)
        cached = self._addresses.get(key)
        if cached is not None:
            return cached
        from ._libbpf import map_lookup

        handle = self._maps[map_name]
        raw = map_lookup(handle.fd, struct.pack("<I", stack_id), handle.value_size)
        addresses: tuple[int, ...] = ()
        if raw is not None:
            words = struct.unpack(f"<{len(raw) // 8}Q", raw[:len(raw) // 8 * 8])
            end = words.index(0) if 0 in words else len(words)
            addresses = words[:end]
        self._addresses[key] = addresses
        return addresses
