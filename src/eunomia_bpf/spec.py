"""Frozen blueprints of what a package will put in the kernel (pure: no syscalls).

``ObjectSpec.from_package`` reads the package meta and the object's BTF and says, before
anything is loaded: which programs attach where, which maps exist with which types, which
variables can be set (with offsets, sizes, defaults) and how exported events are typed.
"""

from __future__ import annotations

import functools
import io
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from .btf import BTF, Array, Datasec, Kind, Ptr, Struct, Var
from .errors import BTFError, EunomiaError, PackageError
from .package import Package

__all__ = ["ExportSpec", "MapSpec", "MapType", "ObjectSpec", "ProgramSpec", "VariableSpec"]

log = logging.getLogger("eunomia_bpf")


class MapType:
    """The few BPF map type numbers the runtime needs to tell apart."""

    HASH = 1
    ARRAY = 2
    PERF_EVENT_ARRAY = 4
    PERCPU_HASH = 5
    PERCPU_ARRAY = 6
    STACK_TRACE = 7
    RINGBUF = 27

    EVENT_TYPES = (PERF_EVENT_ARRAY, RINGBUF)


# Sections whose variables become package arguments, in the order ecc lists them.
DATA_SECTIONS = (".rodata", ".data", ".bss")


def _empty() -> Mapping[str, Any]:
    return MappingProxyType({})


@dataclass(frozen=True)
class ProgramSpec:
    name: str
    section: str
    link: bool = True
    params: Mapping[str, Any] = field(default_factory=_empty)


@dataclass(frozen=True)
class MapSpec:
    name: str
    ident: str
    map_type: int | None = None
    key_type_id: int = 0
    value_type_id: int = 0
    max_entries: int = 0
    mmaped: bool = False
    sample: Mapping[str, Any] | None = None
    export_config: Any = None


@dataclass(frozen=True)
class VariableSpec:
    name: str
    section: str
    offset: int
    size: int
    type_id: int
    type_name: str
    #: the default the package meta declares (``value`` / ``cmdarg.default``); it must be
    #: written before load. None: the object's own initial bytes stand.
    declared_value: Any = None
    #: the variable's bytes in the object (zeros for ``.bss``), None if unknown
    initial: bytes | None = field(default=None, repr=False)
    description: str | None = None
    cmdarg: Mapping[str, Any] = field(default_factory=_empty)
    btf: BTF | None = field(default=None, repr=False, compare=False)

    @property
    def declared(self) -> bool:
        return self.declared_value is not None

    @functools.cached_property
    def default(self) -> Any:
        """The value the program sees unless told otherwise (decoded on first use, so
        that reading a spec does not pay for the decoder)."""
        if self.declared_value is not None:
            return self.declared_value
        if self.initial is None or self.btf is None:
            return None
        from .decode import layout_for

        try:
            return layout_for(self.btf, self.type_id).decode(self.initial)
        except EunomiaError:
            return None

    @property
    def is_dummy(self) -> bool:
        """ecc's ``__eunomia_dummy_*`` variables only mark export types."""
        return self.name.startswith("__eunomia_dummy")


@dataclass(frozen=True)
class ExportSpec:
    map_name: str
    type_id: int
    type_name: str


@dataclass(frozen=True)
class ObjectSpec:
    name: str
    object: bytes = field(repr=False)
    btf: BTF = field(repr=False)
    programs: tuple[ProgramSpec, ...]
    maps: tuple[MapSpec, ...]
    variables: tuple[VariableSpec, ...]
    exports: tuple[ExportSpec, ...]
    doc: Mapping[str, Any] = field(default_factory=_empty)
    poll_timeout_ms: int = 100
    perf_buffer_pages: int = 64
    perf_buffer_time_ms: int = 10

    @classmethod
    def from_package(cls, pkg: Package) -> ObjectSpec:
        return _build(pkg)

    def map(self, name: str) -> MapSpec:
        for m in self.maps:
            if m.name == name or m.ident == name:
                return m
        raise KeyError(name)

    @property
    def arguments(self) -> tuple[VariableSpec, ...]:
        """Variables that become command-line options of the package."""
        return tuple(v for v in self.variables if not v.is_dummy)


def _section_bytes(obj: bytes) -> dict[str, bytes]:
    """Initial contents of the data sections (``.bss`` has none: zeros)."""
    from elftools.common.exceptions import ELFError
    from elftools.elf.elffile import ELFFile

    out: dict[str, bytes] = {}
    try:
        elf = ELFFile(io.BytesIO(obj))
        for sec in elf.iter_sections():
            if sec.name.startswith((".rodata", ".data")) and sec["sh_type"] == "SHT_PROGBITS":
                out[sec.name] = sec.data()
    except (ELFError, ValueError, KeyError, OSError) as exc:  # pyelftools raises several
        raise PackageError(f"read object: malformed ELF: {exc}") from None
    return out


def _map_definition(btf: BTF, var: Var) -> dict[str, int]:
    """Decode a BTF-defined map (``struct { __uint(type, ...); ... } name SEC(".maps")``)."""
    out: dict[str, int] = {}
    t = btf[btf.resolve(var.type)]
    if not isinstance(t, Struct):
        return out
    for m in t.members:
        mt = btf[btf.resolve(m.type)]
        if not isinstance(mt, Ptr):
            continue
        target = btf.resolve(mt.type)
        pointee = btf[target]
        if m.name in ("type", "max_entries", "key_size", "value_size", "map_flags") \
                and isinstance(pointee, Array):
            out[m.name] = pointee.nelems
        elif m.name in ("key", "value"):
            out[m.name + "_type"] = mt.type
    return out


def _export_type(btf: BTF, meta: Mapping[str, Any]) -> tuple[int, str] | None:
    for et in meta.get("export_types") or []:
        name = et.get("name", "")
        for kind in (Kind.STRUCT, Kind.UNION):
            try:
                tid = btf.find(name, kind)
            except BTFError:
                continue
            return tid, btf.type_name(tid)
        tid = et.get("type_id", 0)
        if 0 < tid < len(btf.types) and btf[tid].kind in (Kind.STRUCT, Kind.UNION):
            return tid, btf.type_name(tid)
        raise PackageError(f"read package: export type {name!r} is not in the object's BTF")
    # ecc's convention without a header: a `struct X *__eunomia_dummy_X_ptr` variable
    for sec_name in DATA_SECTIONS:
        sec = btf.datasec(sec_name)
        for info in sec.vars if sec else ():
            var = btf[info.type]
            if isinstance(var, Var) and var.name.startswith("__eunomia_dummy_"):
                ptr = btf[btf.resolve(var.type)]
                if isinstance(ptr, Ptr):
                    tid = btf.resolve(ptr.type)
                    return tid, btf.type_name(tid)
    return None


def _internal_section(name: str, ident: str) -> str | None:
    """ecc names internal maps ``<8 chars of obj_name>.rodata``; libbpf knows ``.rodata``."""
    if name.startswith("."):
        return name
    if "." in name:
        return name[name.index("."):]
    return None


def _build(pkg: Package) -> ObjectSpec:
    try:
        btf = BTF.from_elf(pkg.object)
    except BTFError as exc:
        raise PackageError(f"read object BTF: {exc}") from None
    skel = pkg.bpf_skel
    meta = pkg.meta

    programs = tuple(
        ProgramSpec(
            name=p["name"], section=p["attach"], link=bool(p.get("link", True)),
            params=MappingProxyType({k: v for k, v in p.items()
                                     if k not in ("name", "attach", "link")}))
        for p in skel.get("progs") or [])

    map_meta = {m["name"]: m for m in skel.get("maps") or []}
    maps: list[MapSpec] = []
    maps_sec = btf.datasec(".maps")
    seen: set[str] = set()
    for info in maps_sec.vars if maps_sec else ():
        var = btf[info.type]
        if not isinstance(var, Var):
            continue
        d = _map_definition(btf, var)
        m = map_meta.get(var.name, {})
        seen.add(var.name)
        maps.append(MapSpec(
            name=var.name, ident=m.get("ident", var.name), map_type=d.get("type"),
            key_type_id=d.get("key_type", 0), value_type_id=d.get("value_type", 0),
            max_entries=d.get("max_entries", 0), mmaped=bool(m.get("mmaped", False)),
            sample=m.get("sample"), export_config=m.get("export_config")))
    for name, m in map_meta.items():
        if name in seen:
            continue
        section = _internal_section(name, m.get("ident", ""))
        maps.append(MapSpec(name=section or name, ident=m.get("ident", name),
                            mmaped=bool(m.get("mmaped", False)), sample=m.get("sample"),
                            export_config=m.get("export_config")))

    variables = _variables(pkg, btf)

    exports: list[ExportSpec] = []
    export = _export_type(btf, meta)
    for m in maps:
        if m.map_type in MapType.EVENT_TYPES and m.export_config != "no_export":
            if export is None:
                log.warning("map %s carries events but the package names no export type",
                            m.name)
                continue
            exports.append(ExportSpec(map_name=m.name, type_id=export[0], type_name=export[1]))

    return ObjectSpec(
        name=str(skel.get("obj_name") or "program"), object=pkg.object, btf=btf,
        programs=programs, maps=tuple(maps), variables=variables, exports=tuple(exports),
        doc=MappingProxyType(dict(pkg.doc)),
        poll_timeout_ms=int(meta.get("poll_timeout_ms", 100)),
        perf_buffer_pages=int(meta.get("perf_buffer_pages", 64)),
        perf_buffer_time_ms=int(meta.get("perf_buffer_time_ms", 10)))


def _variables(pkg: Package, btf: BTF) -> tuple[VariableSpec, ...]:
    initial = _section_bytes(pkg.object)
    out: list[VariableSpec] = []
    for section in pkg.bpf_skel.get("data_sections") or []:
        sec_name = section["name"]
        datasec = btf.datasec(sec_name)
        if not isinstance(datasec, Datasec):
            raise PackageError(f"read package: data section {sec_name} is not in the object's BTF")
        by_name = {}
        for info in datasec.vars:
            var = btf[info.type]
            if isinstance(var, Var):
                by_name[var.name] = (var, info)
        for v in section["variables"]:
            if v["name"] not in by_name:
                raise PackageError(
                    f"read package: variable {v['name']} is not in {sec_name} of the object")
            var, info = by_name[v["name"]]
            type_id = btf.unqualified(var.type)
            declared = v.get("value", (v.get("cmdarg") or {}).get("default"))
            raw = initial.get(sec_name)
            if raw is None and sec_name.startswith(".bss"):
                raw = bytes(datasec.size)
            end = info.offset + info.size
            out.append(VariableSpec(
                name=v["name"], section=sec_name, offset=info.offset, size=info.size,
                type_id=type_id, type_name=btf.type_name(type_id, qualifiers=False),
                declared_value=declared,
                initial=raw[info.offset:end] if raw is not None and end <= len(raw) else None,
                description=v.get("description"),
                cmdarg=MappingProxyType(dict(v.get("cmdarg") or {})), btf=btf))
    return tuple(out)
