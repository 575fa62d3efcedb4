"""The BTF type kinds, one frozen dataclass per kind.

Every type has ``kind`` and ``name`` ("" when anonymous). Fields that refer to other
types hold type ids (``int``), which are indices into ``BTF.types``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import ClassVar


class Kind(enum.IntEnum):
    """``BTF_KIND_*`` numbers, as stored in the top bits of ``btf_type.info``."""

    VOID = 0
    INT = 1
    PTR = 2
    ARRAY = 3
    STRUCT = 4
    UNION = 5
    ENUM = 6
    FWD = 7
    TYPEDEF = 8
    VOLATILE = 9
    CONST = 10
    RESTRICT = 11
    FUNC = 12
    FUNC_PROTO = 13
    VAR = 14
    DATASEC = 15
    FLOAT = 16
    DECL_TAG = 17
    TYPE_TAG = 18
    ENUM64 = 19


@dataclass(frozen=True, slots=True)
class Void:
    """Type id 0: ``void``."""

    kind: ClassVar[Kind] = Kind.VOID
    name: str = ""


@dataclass(frozen=True, slots=True)
class Int:
    """An integer; ``bits``/``bit_offset`` come from the INT encoding word."""

    kind: ClassVar[Kind] = Kind.INT
    name: str
    size: int
    signed: bool
    char: bool
    bool: bool
    bits: int
    bit_offset: int = 0


@dataclass(frozen=True, slots=True)
class Ptr:
    """A pointer to ``type``."""

    kind: ClassVar[Kind] = Kind.PTR
    type: int
    name: str = ""


@dataclass(frozen=True, slots=True)
class Array:
    """``nelems`` elements of ``type``."""

    kind: ClassVar[Kind] = Kind.ARRAY
    type: int
    index_type: int
    nelems: int
    name: str = ""


@dataclass(frozen=True, slots=True)
class Member:
    """A struct/union member; ``bitfield_size`` is 0 for ordinary members."""

    name: str
    type: int
    bit_offset: int
    bitfield_size: int = 0


@dataclass(frozen=True, slots=True)
class Struct:
    """A ``struct`` with its byte ``size`` and members."""

    kind: ClassVar[Kind] = Kind.STRUCT
    name: str
    size: int
    members: tuple[Member, ...]


@dataclass(frozen=True, slots=True)
class Union:
    """A ``union``: members all at (or near) offset 0."""

    kind: ClassVar[Kind] = Kind.UNION
    name: str
    size: int
    members: tuple[Member, ...]


@dataclass(frozen=True, slots=True)
class EnumValue:
    """One enumerator."""

    name: str
    value: int


@dataclass(frozen=True, slots=True)
class Enum:
    """A 32-bit-valued ``enum`` of ``size`` bytes."""

    kind: ClassVar[Kind] = Kind.ENUM
    name: str
    size: int
    signed: bool
    values: tuple[EnumValue, ...]


@dataclass(frozen=True, slots=True)
class Enum64:
    """An ``enum`` with 64-bit enumerator values."""

    kind: ClassVar[Kind] = Kind.ENUM64
    name: str
    size: int
    signed: bool
    values: tuple[EnumValue, ...]


@dataclass(frozen=True, slots=True)
class Fwd:
    """A forward declaration of a struct (or a union when ``union``)."""

    kind: ClassVar[Kind] = Kind.FWD
    name: str
    union: bool


@dataclass(frozen=True, slots=True)
class Typedef:
    """``typedef <type> name``."""

    kind: ClassVar[Kind] = Kind.TYPEDEF
    name: str
    type: int


@dataclass(frozen=True, slots=True)
class Volatile:
    """``volatile <type>``."""

    kind: ClassVar[Kind] = Kind.VOLATILE
    type: int
    name: str = ""


@dataclass(frozen=True, slots=True)
class Const:
    """``const <type>``."""

    kind: ClassVar[Kind] = Kind.CONST
    type: int
    name: str = ""


@dataclass(frozen=True, slots=True)
class Restrict:
    """``restrict <type>``."""

    kind: ClassVar[Kind] = Kind.RESTRICT
    type: int
    name: str = ""


@dataclass(frozen=True, slots=True)
class TypeTag:
    """``__attribute__((btf_type_tag(name))) <type>``."""

    kind: ClassVar[Kind] = Kind.TYPE_TAG
    name: str
    type: int


@dataclass(frozen=True, slots=True)
class Func:
    """A function; ``type`` is its FUNC_PROTO, ``linkage`` 0 static, 1 global, 2 extern."""

    kind: ClassVar[Kind] = Kind.FUNC
    name: str
    type: int
    linkage: int


@dataclass(frozen=True, slots=True)
class Param:
    """A FUNC_PROTO parameter; a last one with type 0 means ``...``."""

    name: str
    type: int


@dataclass(frozen=True, slots=True)
class FuncProto:
    """A function signature."""

    kind: ClassVar[Kind] = Kind.FUNC_PROTO
    return_type: int
    params: tuple[Param, ...]
    name: str = ""


@dataclass(frozen=True, slots=True)
class Var:
    """A global variable; ``linkage`` 0 static, 1 global, 2 extern."""

    kind: ClassVar[Kind] = Kind.VAR
    name: str
    type: int
    linkage: int


@dataclass(frozen=True, slots=True)
class VarSecinfo:
    """Where a VAR lives inside a DATASEC."""

    type: int
    offset: int
    size: int


@dataclass(frozen=True, slots=True)
class Datasec:
    """An ELF data section (``.rodata``, ``.bss``, ...) and the variables in it."""

    kind: ClassVar[Kind] = Kind.DATASEC
    name: str
    size: int
    vars: tuple[VarSecinfo, ...]


@dataclass(frozen=True, slots=True)
class Float:
    """A floating-point type of ``size`` bytes."""

    kind: ClassVar[Kind] = Kind.FLOAT
    name: str
    size: int


@dataclass(frozen=True, slots=True)
class DeclTag:
    """``btf_decl_tag(name)`` on ``type`` (``component_idx`` -1: the whole type)."""

    kind: ClassVar[Kind] = Kind.DECL_TAG
    name: str
    type: int
    component_idx: int


Type = (Void | Int | Ptr | Array | Struct | Union | Enum | Enum64 | Fwd | Typedef | Volatile
        | Const | Restrict | TypeTag | Func | FuncProto | Var | Datasec | Float | DeclTag)
