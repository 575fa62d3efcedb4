"""Raw ``.BTF`` bytes -> a list of types (index == type id).

The format is the kernel's (``include/uapi/linux/btf.h``): a header, a type section of
variable-length records and a string section. Every malformed input raises ``BTFError``.
"""

from __future__ import annotations

import struct

from ..errors import BTFError
from ._types import (
    Array,
    Const,
    Datasec,
    DeclTag,
    Enum,
    Enum64,
    EnumValue,
    Float,
    Func,
    FuncProto,
    Fwd,
    Int,
    Kind,
    Member,
    Param,
    Ptr,
    Restrict,
    Struct,
    Type,
    Typedef,
    TypeTag,
    Union,
    Var,
    VarSecinfo,
    Void,
    Volatile,
)

MAGIC = 0xEB9F
_HEADER_MIN = 24  # magic, version, flags, hdr_len, type_off, type_len, str_off, str_len

_INT_SIGNED = 1
_INT_CHAR = 2
_INT_BOOL = 4


def byte_order_of(raw: bytes | memoryview) -> str:
    """``"<"`` or ``">"`` from the magic; BTFError when it is neither."""
    if len(raw) < 2:
        raise BTFError(f"parse BTF: {len(raw)} bytes is too short for a header")
    if raw[0] == 0x9F and raw[1] == 0xEB:
        return "<"
    if raw[0] == 0xEB and raw[1] == 0x9F:
        return ">"
    raise BTFError(f"parse BTF: bad magic 0x{raw[0]:02x}{raw[1]:02x} (want 0xeb9f)")


class _Strings:
    """The string section, decoded on demand and cached by offset."""

    __slots__ = ("_cache", "_data")

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._cache: dict[int, str] = {0: ""}

    def get(self, offset: int) -> str:
        cached = self._cache.get(offset)
        if cached is not None:
            return cached
        data = self._data
        if offset >= len(data):
            raise BTFError(f"parse BTF: string offset {offset} beyond the string section "
                           f"({len(data)} bytes)")
        end = data.find(b"\0", offset)
        if end < 0:
            raise BTFError(f"parse BTF: string at offset {offset} is not NUL-terminated")
        text = data[offset:end].decode("utf-8", "replace")
        self._cache[offset] = text
        return text


def parse(raw: bytes | memoryview) -> tuple[list[Type], str]:
    """Parse a raw ``.BTF`` section; returns (types, byte order)."""
    view = memoryview(raw).cast("B")
    order = byte_order_of(view)
    if len(view) < _HEADER_MIN:
        raise BTFError(f"parse BTF: {len(view)} bytes is too short for a header")
    _magic, version, _flags, hdr_len = struct.unpack_from(order + "HBBI", view, 0)
    if version != 1:
        raise BTFError(f"parse BTF: unsupported version {version}")
    if hdr_len < _HEADER_MIN or hdr_len > len(view):
        raise BTFError(f"parse BTF: header length {hdr_len} out of range")
    type_off, type_len, str_off, str_len = struct.unpack_from(order + "4I", view, 8)
    size = len(view) - hdr_len
    if type_off + type_len > size or str_off + str_len > size:
        raise BTFError(f"parse BTF: sections (types {type_off}+{type_len}, "
                       f"strings {str_off}+{str_len}) exceed the {size} data bytes")
    if type_len % 4:
        raise BTFError(f"parse BTF: type section length {type_len} is not a multiple of 4")
    base = hdr_len
    strings = _Strings(bytes(view[base + str_off:base + str_off + str_len]))
    if str_len and view[base + str_off] != 0:
        raise BTFError("parse BTF: string section does not start with an empty string")
    types_buf = bytes(view[base + type_off:base + type_off + type_len])
    types = _parse_types(types_buf, order, strings)
    _check_refs(types)
    return types, order


def _parse_types(buf: bytes, order: str, strings: _Strings) -> list[Type]:
    u32x3 = struct.Struct(order + "III").unpack_from
    member_s = struct.Struct(order + "III")
    enum_s = struct.Struct(order + "Ii")
    enum_u = struct.Struct(order + "II")
    enum64_s = struct.Struct(order + "III")
    param_s = struct.Struct(order + "II")
    u32 = struct.Struct(order + "I").unpack_from
    i32 = struct.Struct(order + "i").unpack_from
    name_of = strings.get

    types: list[Type] = [Void()]
    append = types.append
    pos = 0
    end = len(buf)
    try:
        while pos < end:
            name_off, info, size_or_type = u32x3(buf, pos)
            pos += 12
            kind = (info >> 24) & 0x1F
            vlen = info & 0xFFFF
            kflag = info >> 31
            name = name_of(name_off) if name_off else ""
            t: Type
            if kind == 1:  # INT
                word = u32(buf, pos)[0]
                pos += 4
                enc = (word >> 24) & 0x0F
                t = Int(name, size_or_type, bool(enc & _INT_SIGNED), bool(enc & _INT_CHAR),
                        bool(enc & _INT_BOOL), word & 0xFF, (word >> 16) & 0xFF)
            elif kind == 2:
                t = Ptr(size_or_type, name)
            elif kind == 3:
                elem, index, nelems = u32x3(buf, pos)
                pos += 12
                t = Array(elem, index, nelems, name)
            elif kind == 4 or kind == 5:
                members = []
                for m_name, m_type, m_off in member_s.iter_unpack(buf[pos:pos + 12 * vlen]):
                    if kflag:
                        members.append(Member(name_of(m_name) if m_name else "", m_type,
                                              m_off & 0xFFFFFF, m_off >> 24))
                    else:
                        members.append(Member(name_of(m_name) if m_name else "", m_type,
                                              m_off, 0))
                if len(members) != vlen:
                    raise BTFError(f"parse BTF: type {len(types)} is truncated")
                pos += 12 * vlen
                if kind == 4:
                    t = Struct(name, size_or_type, tuple(members))
                else:
                    t = Union(name, size_or_type, tuple(members))
            elif kind == 6:
                unpacker = enum_s if kflag else enum_u
                values = tuple(EnumValue(name_of(v_name) if v_name else "", v)
                               for v_name, v in unpacker.iter_unpack(buf[pos:pos + 8 * vlen]))
                if len(values) != vlen:
                    raise BTFError(f"parse BTF: type {len(types)} is truncated")
                pos += 8 * vlen
                t = Enum(name, size_or_type, bool(kflag), values)
            elif kind == 7:
                t = Fwd(name, bool(kflag))
            elif kind == 8:
                t = Typedef(name, size_or_type)
            elif kind == 9:
                t = Volatile(size_or_type, name)
            elif kind == 10:
                t = Const(size_or_type, name)
            elif kind == 11:
                t = Restrict(size_or_type, name)
            elif kind == 12:
                t = Func(name, size_or_type, vlen)
            elif kind == 13:
                params = tuple(Param(name_of(p_name) if p_name else "", p_type)
                               for p_name, p_type in param_s.iter_unpack(buf[pos:pos + 8 * vlen]))
                if len(params) != vlen:
                    raise BTFError(f"parse BTF: type {len(types)} is truncated")
                pos += 8 * vlen
                t = FuncProto(size_or_type, params, name)
            elif kind == 14:
                linkage = u32(buf, pos)[0]
                pos += 4
                t = Var(name, size_or_type, linkage)
            elif kind == 15:
                secinfos = tuple(VarSecinfo(v_type, v_off, v_size)
                                 for v_type, v_off, v_size
                                 in member_s.iter_unpack(buf[pos:pos + 12 * vlen]))
                if len(secinfos) != vlen:
                    raise BTFError(f"parse BTF: type {len(types)} is truncated")
                pos += 12 * vlen
                t = Datasec(name, size_or_type, secinfos)
            elif kind == 16:
                t = Float(name, size_or_type)
            elif kind == 17:
                component = i32(buf, pos)[0]
                pos += 4
                t = DeclTag(name, size_or_type, component)
            elif kind == 18:
                t = TypeTag(name, size_or_type)
            elif kind == 19:
                values64 = []
                for v_name, lo, hi in enum64_s.iter_unpack(buf[pos:pos + 12 * vlen]):
                    value = (hi << 32) | lo
                    if kflag and value >= 1 << 63:
                        value -= 1 << 64
                    values64.append(EnumValue(name_of(v_name) if v_name else "", value))
                if len(values64) != vlen:
                    raise BTFError(f"parse BTF: type {len(types)} is truncated")
                pos += 12 * vlen
                t = Enum64(name, size_or_type, bool(kflag), tuple(values64))
            else:
                raise BTFError(f"parse BTF: type {len(types)} has unknown kind {kind}")
            append(t)
    except struct.error as exc:
        raise BTFError(f"parse BTF: type {len(types)} is truncated") from exc
    if pos != end:
        raise BTFError(f"parse BTF: type {len(types)} runs past the type section")
    return types


def _refs(t: Type) -> list[int]:
    """Type ids that ``t`` refers to."""
    kind = t.kind
    if kind in (Kind.STRUCT, Kind.UNION):
        return [m.type for m in t.members]  # type: ignore[union-attr]
    if kind == Kind.FUNC_PROTO:
        return [t.return_type] + [p.type for p in t.params]  # type: ignore[union-attr]
    if kind == Kind.DATASEC:
        return [v.type for v in t.vars]  # type: ignore[union-attr]
    if kind == Kind.ARRAY:
        return [t.type, t.index_type]  # type: ignore[union-attr]
    ref = getattr(t, "type", None)
    return [ref] if ref is not None else []


def _check_refs(types: list[Type]) -> None:
    count = len(types)
    for type_id, t in enumerate(types):
        for ref in _refs(t):
            if ref >= count:
                raise BTFError(f"parse BTF: type {type_id} ({t.kind.name.lower()}) refers to "
                               f"type {ref}, beyond the last type {count - 1}")
