"""``BTF``: the parsed types of one ``.BTF`` section, with names and sizes."""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

from ..errors import BTFError
from ._parse import parse
from ._types import Datasec, FuncProto, Kind, Type, VarSecinfo

# Real chains (typedef -> const -> typedef -> ...) are short; the kernel gives up at 32.
MAX_DEPTH = 64
POINTER_SIZE = 8  # BPF is a 64-bit target

_QUALIFIERS = frozenset({Kind.TYPEDEF, Kind.CONST, Kind.VOLATILE, Kind.RESTRICT, Kind.TYPE_TAG})
_SIZED = frozenset({Kind.INT, Kind.STRUCT, Kind.UNION, Kind.ENUM, Kind.ENUM64, Kind.DATASEC,
                    Kind.FLOAT})
_PASS_THROUGH = _QUALIFIERS | {Kind.VAR}


class BTF:
    """Types by id (``types[0]`` is void), and C names and sizes of them."""

    __slots__ = ("__weakref__", "_by_name", "byte_order", "types")

    def __init__(self, types: Sequence[Type], byte_order: str = "<") -> None:
        self.types: Sequence[Type] = types
        self.byte_order = byte_order  # "<" little-endian, ">" big-endian
        self._by_name: dict[str, list[int]] | None = None

    def __repr__(self) -> str:
        return f"<BTF {len(self.types) - 1} types>"

    def __len__(self) -> int:
        return len(self.types)

    @classmethod
    def from_bytes(cls, raw: bytes | bytearray | memoryview) -> BTF:
        """Parse a raw ``.BTF`` section (or ``/sys/kernel/btf/vmlinux``)."""
        types, order = parse(bytes(raw) if isinstance(raw, bytearray) else raw)
        return cls(types, order)

    @classmethod
    def from_elf(cls, elf: bytes | bytearray | memoryview) -> BTF:
        """Find the ``.BTF`` section of an ELF object with pyelftools and parse it."""
        from elftools.common.exceptions import ELFError
        from elftools.elf.elffile import ELFFile

        try:
            elf_file = ELFFile(io.BytesIO(bytes(elf)))
            section = elf_file.get_section_by_name(".BTF")
            if section is None:
                raise BTFError("read ELF: the object has no .BTF section")
            btf = cls.from_bytes(section.data())
            btf._fix_datasecs(elf_file)
        except (BTFError, ELFError) as exc:
            if isinstance(exc, BTFError):
                raise
            raise BTFError(f"read ELF: {exc}") from exc
        except Exception as exc:  # pyelftools lets struct/construct/value errors escape
            raise BTFError(f"read ELF: malformed object ({type(exc).__name__}: {exc})") from exc
        return btf

    def _fix_datasecs(self, elf_file: Any) -> None:
        """Fill DATASEC sizes and variable offsets from the ELF, as libbpf does on open.

        clang leaves them 0 in object files; the section headers and symbols hold them.
        """
        symtab = elf_file.get_section_by_name(".symtab")
        types = list(self.types)
        changed = False
        for type_id, t in enumerate(types):
            if not isinstance(t, Datasec) or t.size:
                continue
            section = elf_file.get_section_by_name(t.name)
            if section is None:
                continue
            index = elf_file.get_section_index(t.name)
            offsets: dict[str, int] = {}
            if symtab is not None:
                for symbol in symtab.iter_symbols():
                    if (symbol["st_shndx"] == index and symbol["st_info"]["type"] == "STT_OBJECT"):
                        offsets[symbol.name] = symbol["st_value"]
            infos = tuple(
                VarSecinfo(info.type, offsets.get(self[info.type].name, info.offset), info.size)
                for info in t.vars)
            types[type_id] = Datasec(t.name, section["sh_size"], infos)
            changed = True
        if changed:
            self.types = types

    def __getitem__(self, type_id: int) -> Type:
        if not isinstance(type_id, int) or not 0 <= type_id < len(self.types):
            raise BTFError(f"look up type {type_id!r}: there are types 0..{len(self.types) - 1}")
        return self.types[type_id]

    def find(self, name: str, kind: Kind | None = None) -> int:
        """The id of the first type called ``name`` (of ``kind`` when given)."""
        if self._by_name is None:
            index: dict[str, list[int]] = {}
            for type_id, t in enumerate(self.types):
                if t.name:
                    index.setdefault(t.name, []).append(type_id)
            self._by_name = index
        for type_id in self._by_name.get(name, ()):
            if kind is None or self.types[type_id].kind == kind:
                return type_id
        what = f"{kind.name.lower()} {name!r}" if kind is not None else repr(name)
        raise BTFError(f"find type {what}: no such type")

    def resolve(self, type_id: int) -> int:
        """Skip typedef/const/volatile/restrict/type_tag to the underlying type id."""
        for _ in range(MAX_DEPTH):
            t = self[type_id]
            if t.kind not in _QUALIFIERS:
                return type_id
            type_id = t.type  # type: ignore[union-attr]
        raise BTFError(f"resolve type {type_id}: chain of qualifiers is too long (a cycle?)")

    def size_of(self, type_id: int) -> int:
        """Size in bytes of a type, following qualifiers, typedefs, arrays and vars."""
        start = type_id
        count = 1
        for _ in range(MAX_DEPTH):
            t = self[type_id]
            kind = t.kind
            if kind in _SIZED:
                return count * t.size  # type: ignore[union-attr]
            if kind == Kind.PTR:
                return count * POINTER_SIZE
            if kind == Kind.ARRAY:
                count *= t.nelems  # type: ignore[union-attr]
                type_id = t.type  # type: ignore[union-attr]
            elif kind in _PASS_THROUGH:
                type_id = t.type  # type: ignore[union-attr]
            else:
                raise BTFError(f"size type {start}: {kind.name.lower()} has no size")
        raise BTFError(f"size type {start}: chain of types is too long (a cycle?)")

    def type_name(self, type_id: int, *, qualifiers: bool = True) -> str:
        """The C spelling of a type: ``"unsigned int"``, ``"char[16]"``, ``"struct event *"``.

        ``qualifiers=False`` drops const/volatile/restrict at every depth, as ecc spells
        types in package meta (``const volatile pid_t`` is ``pid_t``).
        """
        return self._spell(type_id, "", 0, qualifiers)

    def unqualified(self, type_id: int) -> int:
        """Skip const/volatile/restrict/type tags but keep typedef names (``pid_t``)."""
        for _ in range(MAX_DEPTH):
            t = self[type_id]
            if t.kind not in (Kind.CONST, Kind.VOLATILE, Kind.RESTRICT, Kind.TYPE_TAG):
                return type_id
            type_id = t.type  # type: ignore[union-attr]
        raise BTFError(f"resolve type {type_id}: chain of qualifiers is too long (a cycle?)")

    def _spell(self, type_id: int, declarator: str, depth: int, quals: bool = True) -> str:
        if depth > MAX_DEPTH:
            raise BTFError(f"name type {type_id}: chain of types is too long (a cycle?)")
        t = self[type_id]
        kind = t.kind
        depth += 1
        if kind == Kind.PTR:
            return self._spell(t.type, "*" + declarator, depth, quals)  # type: ignore[union-attr]
        if kind == Kind.ARRAY:
            if declarator.startswith("*"):
                declarator = f"({declarator})"
            return self._spell(t.type, f"{declarator}[{t.nelems}]",  # type: ignore[union-attr]
                               depth, quals)
        if kind in (Kind.CONST, Kind.VOLATILE, Kind.RESTRICT) and not quals:
            return self._spell(t.type, declarator, depth, quals)  # type: ignore[union-attr]
        if kind in (Kind.CONST, Kind.VOLATILE, Kind.RESTRICT):
            qualifier = kind.name.lower()
            target = self[t.type]  # type: ignore[union-attr]
            if target.kind == Kind.PTR:  # "char *const"
                return self._spell(t.type, qualifier + (" " + declarator if declarator else ""),  # type: ignore[union-attr]
                                   depth, quals)
            return f"{qualifier} " + self._spell(t.type, declarator, depth, quals)  # type: ignore[union-attr]
        if kind in (Kind.TYPE_TAG, Kind.DECL_TAG, Kind.VAR):
            return self._spell(t.type, declarator, depth, quals)  # type: ignore[union-attr]
        if kind == Kind.FUNC_PROTO:
            assert isinstance(t, FuncProto)
            params = []
            for param in t.params:
                params.append("..." if param.type == 0 else self._spell(param.type, "", depth, quals))
            inner = f"({declarator})" if declarator else ""
            return self._spell(t.return_type, f"{inner}({', '.join(params) or 'void'})", depth, quals)
        if kind in (Kind.STRUCT, Kind.UNION):
            base = f"{kind.name.lower()} {t.name or '{...}'}"
        elif kind in (Kind.ENUM, Kind.ENUM64):
            base = f"enum {t.name or '{...}'}"
        elif kind == Kind.FWD:
            base = f"{'union' if t.union else 'struct'} {t.name}"  # type: ignore[union-attr]
        elif kind == Kind.VOID:
            base = "void"
        else:  # int, float, typedef, func, datasec: the name is the spelling
            base = t.name
        if not declarator:
            return base
        if declarator.startswith(("[", "(")) and not declarator.startswith("(*"):
            return base + declarator
        return f"{base} {declarator}"

    def datasec(self, name: str) -> Datasec | None:
        """The DATASEC called ``name`` (``".rodata"``, ``".bss"``), or None."""
        try:
            type_id = self.find(name, Kind.DATASEC)
        except BTFError:
            return None
        t = self.types[type_id]
        assert isinstance(t, Datasec)
        return t
