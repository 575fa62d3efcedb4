"""BTF type -> precomputed ``Layout`` (numpy dtype + column converters) -> Python values.

A layout is built once per type: a numpy structured dtype with the member offsets and
``itemsize`` of the BTF type, and one converter per field that turns a whole column of
records into Python values at once. Decoding a batch is then a handful of numpy
operations and ``tolist()`` calls per field, not work per record per field.

Values: integers -> ``int`` (bitfields and 128-bit too), ``_Bool`` -> ``bool``, ``char[N]``
-> ``str`` (up to the first NUL, UTF-8 with replacement), other arrays -> ``list``, enums ->
the enumerator name (the ``int`` when none matches), floats -> ``float``, structs/unions ->
``dict`` (members of anonymous struct/union members are merged into their parent, as C
spells them), pointers -> ``int``.
"""

from __future__ import annotations

import functools
import struct
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from .btf import (
    BTF,
    Array,
    Datasec,
    Enum,
    Enum64,
    Float,
    Int,
    Ptr,
    Struct,
    Union,
    Var,
)
from .errors import BTFError, DecodeError

__all__ = ["Layout", "layout_for"]

MAX_LAYOUT_SIZE = 1 << 30  # no map value or record is anywhere near this
_VALUE_KEY = "value"  # the one column of a layout whose type is not a struct/union


# ---------------------------------------------------------------------------------------------
# Column converters: a numpy array whose first axis is the records -> one Python value each.


class _Conv:
    def column(self, arr: np.ndarray) -> list[Any]:
        return arr.tolist()  # type: ignore[no-any-return]


class _Plain(_Conv):
    """Ints of 1..8 bytes, floats, pointers and arrays of them: numpy does it all."""


class _BoolConv(_Conv):
    def column(self, arr: np.ndarray) -> list[Any]:
        return (arr != 0).tolist()  # type: ignore[no-any-return]


class _FloatConv(_Conv):
    def column(self, arr: np.ndarray) -> list[Any]:
        return arr.astype(np.float64).tolist()  # type: ignore[no-any-return]


class _BigInt(_Conv):
    """Integers of sizes numpy has no type for (``__int128``): ``V{n}`` -> int.from_bytes."""

    def __init__(self, order: str, signed: bool) -> None:
        self.order: Any = "little" if order == "<" else "big"
        self.signed = signed

    def column(self, arr: np.ndarray) -> list[Any]:
        order, signed, from_bytes = self.order, self.signed, int.from_bytes
        return [from_bytes(b, order, signed=signed) for b in arr.tolist()]


class _Chars(_Conv):
    """``char[N]`` as ``S{N}``: up to the first NUL, UTF-8 with replacement."""

    def column(self, arr: np.ndarray) -> list[Any]:
        values = arr.tolist()
        if arr.ndim > 1:
            return [self._nested(v) for v in values]
        return [b.split(b"\0", 1)[0].decode("utf-8", "replace") for b in values]

    def _nested(self, value: Any) -> Any:
        if isinstance(value, bytes):
            return value.split(b"\0", 1)[0].decode("utf-8", "replace")
        return [self._nested(v) for v in value]


class _EnumConv(_Conv):
    """Vectorised value -> enumerator name; values without a name stay ints."""

    def __init__(self, values: dict[int, str], dtype: np.dtype[Any]) -> None:
        keys = sorted(values)
        self.by_value = values
        self.keys = np.array(keys, dtype=dtype) if keys else None
        self.names = np.array([values[k] for k in keys], dtype=object)

    def column(self, arr: np.ndarray) -> list[Any]:
        if self.keys is None or arr.size == 0:
            return arr.tolist()  # type: ignore[no-any-return]
        flat = arr.reshape(-1)
        index = np.searchsorted(self.keys, flat)
        np.minimum(index, len(self.keys) - 1, out=index)
        found = self.keys[index] == flat
        out = self.names[index]
        if not found.all():
            missing = ~found
            out[missing] = flat[missing].astype(object)
        return out.reshape(arr.shape).tolist()  # type: ignore[no-any-return]


class _Bitfield(_Conv):
    """``bits`` bits at ``shift`` inside a containing unsigned unit; then ``post``."""

    def __init__(self, shift: int, bits: int, signed: bool, post: _Conv,
                 order: str | None) -> None:
        self.shift, self.bits, self.signed, self.post = shift, bits, signed, post
        self.order = order  # set when the unit is a V{n} field of odd size

    def column(self, arr: np.ndarray) -> list[Any]:
        if self.order is not None:
            byteorder: Any = "little" if self.order == "<" else "big"
            numbers = [(int.from_bytes(b, byteorder) >> self.shift) & ((1 << self.bits) - 1)
                       for b in arr.tolist()]
            if self.signed:
                sign = 1 << (self.bits - 1)
                numbers = [(n ^ sign) - sign for n in numbers]
            return self.post.column(np.array(numbers, dtype=np.int64 if self.signed
                                             else np.uint64))
        units = arr.astype(np.uint64)
        values = (units >> np.uint64(self.shift)) & np.uint64((1 << self.bits) - 1)
        if self.signed:
            if self.bits == 64:
                return self.post.column(values.astype(np.int64))
            sign = 1 << (self.bits - 1)
            return self.post.column((values ^ np.uint64(sign)).astype(np.int64) - np.int64(sign))
        return self.post.column(values)


class _ArrayConv(_Conv):
    """Arrays of elements numpy cannot turn into Python values alone (structs, enums...)."""

    def __init__(self, nelems: int, elem: _Conv) -> None:
        self.nelems, self.elem = nelems, elem

    def column(self, arr: np.ndarray) -> list[Any]:
        count, nelems = arr.shape[0], self.nelems
        flat = self.elem.column(arr.reshape((count * nelems,) + arr.shape[2:]))
        return [flat[i:i + nelems] for i in range(0, count * nelems, nelems)]


class _Const(_Conv):
    """A member with no bytes (flexible array member): the same empty value for all."""

    def __init__(self, value: Any) -> None:
        self.value = value

    def column(self, arr: np.ndarray) -> list[Any]:
        if isinstance(self.value, (list, dict)):  # each record gets its own, as elsewhere
            return [type(self.value)() for _ in range(len(arr))]
        return [self.value] * len(arr)


@functools.cache
def _row_builder(arity: int) -> Callable[..., Callable[..., list[dict[str, Any]]]]:
    """``make(k0, k1, ...)`` -> ``rows(c0, c1, ...)``: dicts from columns via a dict display.

    A ``{k0: v0, ...}`` display is about twice as fast as ``dict(zip(keys, row))``, and
    building dicts is most of the cost of a batch. Only the arity is spliced into the
    source; the keys are passed in as values.
    """
    keys = ", ".join(f"k{i}" for i in range(arity))
    cols = ", ".join(f"c{i}" for i in range(arity))
    vals = ", ".join(f"v{i}" for i in range(arity))
    pairs = ", ".join(f"k{i}: v{i}" for i in range(arity))
    source = (f"def make({keys}):\n"
              f"    def rows({cols}):\n"
              f"        return [{{{pairs}}} for {vals}{',' if arity == 1 else ''} "
              f"in zip({cols})]\n"
              f"    return rows\n")
    namespace: dict[str, Any] = {}
    exec(compile(source, f"<decode rows/{arity}>", "exec"), namespace)  # noqa: S102
    return namespace["make"]  # type: ignore[no-any-return]


@dataclass(frozen=True)
class _Field:
    key: str            # dict key ("" for an anonymous struct/union merged into its parent)
    field: str | None   # numpy field name (None: no bytes)
    conv: _Conv


class _StructConv(_Conv):
    def __init__(self, fields: list[_Field]) -> None:
        self.fields = fields
        self.keys = tuple(self.columns_keys())
        self._rows = _row_builder(len(self.keys))(*self.keys) if self.keys else None

    def columns_keys(self) -> Iterator[str]:
        for f in self.fields:
            if f.key:
                yield f.key
            else:
                assert isinstance(f.conv, _StructConv)
                yield from f.conv.keys

    def columns(self, arr: np.ndarray) -> dict[str, list[Any]]:
        out: dict[str, list[Any]] = {}
        for f in self.fields:
            sub = arr if f.field is None else arr[f.field]
            if f.key:
                out[f.key] = f.conv.column(sub)
            else:
                assert isinstance(f.conv, _StructConv)
                out.update(f.conv.columns(sub))
        return out

    def column(self, arr: np.ndarray) -> list[Any]:
        cols = self.columns(arr)
        if not cols:
            return [{} for _ in range(len(arr))]
        keys = tuple(cols)
        if keys != self.keys or self._rows is None:
            return [dict(zip(keys, row)) for row in zip(*cols.values())]
        return self._rows(*cols.values())


# ---------------------------------------------------------------------------------------------
# Building: BTF type -> (dtype, converter)


def _int_dtype(order: str, size: int, signed: bool) -> np.dtype[Any] | None:
    if size not in (1, 2, 4, 8):
        return None
    return np.dtype(f"{order}{'i' if signed else 'u'}{size}")


def _members(btf: BTF, t: Struct | Union | Datasec) -> list[tuple[str, int, int, int]]:
    """(name, type id, bit offset, bitfield size) of each member / variable."""
    if isinstance(t, Datasec):
        out = []
        for info in t.vars:
            var = btf[info.type]
            if isinstance(var, Var):
                out.append((var.name, var.type, info.offset * 8, 0))
        return out
    return [(m.name, m.type, m.bit_offset, m.bitfield_size) for m in t.members]


def _scalar_bits(btf: BTF, type_id: int) -> tuple[int, int, bool] | None:
    """(bits, extra bit offset, signed) when an INT is narrower than its bytes (old style)."""
    t = btf[btf.resolve(type_id)]
    if isinstance(t, Int) and (t.bit_offset or t.bits != t.size * 8):
        return t.bits, t.bit_offset, t.signed
    return None


def _is_char(btf: BTF, type_id: int) -> bool:
    t = btf[btf.resolve(type_id)]
    return isinstance(t, Int) and t.size == 1 and (t.char or t.name == "char")


def _signed(btf: BTF, type_id: int) -> bool:
    t = btf[btf.resolve(type_id)]
    return isinstance(t, (Int, Enum, Enum64)) and t.signed


class _Builder:
    def __init__(self, btf: BTF) -> None:
        self.btf = btf
        self.order = btf.byte_order
        self.depth = 0

    def build(self, type_id: int) -> tuple[np.dtype[Any], _Conv]:
        self.depth += 1
        try:
            if self.depth > 64:
                raise DecodeError(f"lay out type {type_id}: types nest too deeply (a cycle?)")
            return self._build(type_id)
        finally:
            self.depth -= 1

    def _build(self, type_id: int) -> tuple[np.dtype[Any], _Conv]:
        btf, order = self.btf, self.order
        t = btf[btf.resolve(type_id)]
        if isinstance(t, Int):
            if t.bool and t.size == 1:
                return np.dtype("u1"), _BoolConv()
            dtype = _int_dtype(order, t.size, t.signed)
            if dtype is None:
                return np.dtype(f"V{t.size}"), _BigInt(order, t.signed)
            return dtype, _Plain()
        if isinstance(t, Ptr):
            return np.dtype(f"{order}u8"), _Plain()
        if isinstance(t, (Enum, Enum64)):
            dtype = _int_dtype(order, t.size, t.signed)
            if dtype is None:
                raise DecodeError(f"lay out {btf.type_name(type_id)}: enum size {t.size}")
            lo, hi = _int_range(t.size * 8, t.signed)
            names = {}
            for v in reversed(t.values):  # the first enumerator of a value wins
                if lo <= v.value <= hi:
                    names[v.value] = v.name
            return dtype, _EnumConv(names, dtype)
        if isinstance(t, Float):
            if t.size in (2, 4, 8):
                return np.dtype(f"{order}f{t.size}"), _Plain()
            if t.size == np.dtype(np.longdouble).itemsize:
                return np.dtype(np.longdouble).newbyteorder(order), _FloatConv()  # type: ignore[arg-type]
            raise DecodeError(f"lay out {btf.type_name(type_id)}: float of {t.size} bytes")
        if isinstance(t, Array):
            if _is_char(btf, t.type):
                if t.nelems == 0:
                    return np.dtype("V0"), _Const("")
                return np.dtype(f"S{t.nelems}"), _Chars()
            elem_dtype, elem = self.build(t.type)
            if t.nelems == 0:
                return np.dtype("V0"), _Const([])
            dtype = np.dtype((elem_dtype, (t.nelems,)))
            if type(elem) in (_Plain, _BoolConv, _FloatConv, _Chars):
                return dtype, elem  # numpy's tolist() nests the lists itself
            return dtype, _ArrayConv(t.nelems, elem)
        if isinstance(t, (Struct, Union, Datasec)):
            return self._build_struct(type_id, t)
        raise DecodeError(f"lay out {btf.type_name(type_id)}: a {t.kind.name.lower()} "
                          "has no value layout")

    def _build_struct(self, type_id: int, t: Struct | Union | Datasec
                      ) -> tuple[np.dtype[Any], _StructConv]:
        btf = self.btf
        names: list[str] = []
        formats: list[np.dtype[Any]] = []
        offsets: list[int] = []
        fields: list[_Field] = []
        used: set[str] = set()

        def add(base: str, dtype: np.dtype[Any], offset: int) -> str:
            name, n = base, 1
            while name in used:
                name, n = f"{base}_{n}", n + 1
            used.add(name)
            names.append(name)
            formats.append(dtype)
            offsets.append(offset)
            return name

        for index, (name, member_type, bit_offset, bitfield_size) in enumerate(_members(btf, t)):
            scalar = _scalar_bits(btf, member_type)
            if bitfield_size or scalar is not None:
                if not name:
                    continue  # "int :3;" padding has no value
                bits, extra, signed = scalar or (0, 0, _signed(btf, member_type))
                bits = bitfield_size or bits
                if bits == 0 or bits > 64:
                    raise DecodeError(f"lay out {btf.type_name(type_id)}: member {name} has "
                                      f"{bits} bits")
                post = self._bitfield_post(member_type, bits)
                if isinstance(post, _EnumConv):
                    signed = False  # enumerators are matched on the stored bits
                start, shift, dtype, odd = self._unit(bit_offset + extra, bits, t.size)
                bitfield = _Bitfield(shift, bits, signed, post, self.order if odd else None)
                fields.append(_Field(name, add(name, dtype, start), bitfield))
                continue
            if bit_offset % 8:
                raise DecodeError(f"lay out {btf.type_name(type_id)}: member {name or index} "
                                  f"at bit {bit_offset} is not byte-aligned")
            dtype, conv = self.build(member_type)
            if dtype.itemsize == 0:  # flexible array member, empty struct: no bytes to read
                if name:
                    empty = conv if isinstance(conv, _Const) else \
                        _Const({} if isinstance(conv, _StructConv) else [])
                    fields.append(_Field(name, None, empty))
                continue
            field = add(name or f"__anon{index}", dtype, bit_offset // 8)
            if name or not isinstance(conv, _StructConv):
                fields.append(_Field(name or field, field, conv))
            else:
                fields.append(_Field("", field, conv))
        try:
            dtype = np.dtype({"names": names, "formats": formats, "offsets": offsets,
                              "itemsize": t.size})
        except (ValueError, TypeError) as exc:
            raise DecodeError(f"lay out {btf.type_name(type_id)}: {exc}") from exc
        return dtype, _StructConv(fields)

    def _bitfield_post(self, type_id: int, bits: int) -> _Conv:
        t = self.btf[self.btf.resolve(type_id)]
        if isinstance(t, Int) and t.bool:
            return _BoolConv()
        if isinstance(t, (Enum, Enum64)):
            # An enum bitfield holds the low bits of the enumerator, whatever its sign.
            mask = (1 << bits) - 1
            names: dict[int, str] = {}
            for v in reversed(t.values):
                names[v.value & mask] = v.name
            return _EnumConv(names, np.dtype(np.uint64))
        return _Plain()

    def _unit(self, bit_offset: int, bits: int, limit: int) -> tuple[int, int, np.dtype[Any], bool]:
        """(byte, shift, dtype, odd): the smallest unsigned unit holding the bits.

        Naturally aligned units first (where the compiler put them), then one starting at
        the field's first byte; ``odd`` when only a ``V{n}`` of the covered bytes will do.
        """
        if self.order == "<":
            for size in (1, 2, 4, 8):
                for start in ((bit_offset // (size * 8)) * size, bit_offset // 8):
                    shift = bit_offset - start * 8
                    if shift + bits <= size * 8 and start + size <= limit:
                        return start, shift, np.dtype(f"<u{size}"), False
        start, shift = divmod(bit_offset, 8)
        return start, shift, np.dtype(f"V{(shift + bits + 7) // 8}"), True


def _wrap(value: int, bits: int, signed: bool) -> int:
    """``value`` reduced to ``bits`` bits, read back signed or unsigned."""
    value &= (1 << bits) - 1
    if signed and value >> (bits - 1):
        value -= 1 << bits
    return value


def _int_range(bits: int, signed: bool) -> tuple[int, int]:
    if signed:
        return -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    return 0, (1 << bits) - 1


# ---------------------------------------------------------------------------------------------
# Layout


class Layout:
    """How to read (and write) values of one BTF type: a numpy dtype and converters."""

    def __init__(self, btf: BTF, type_id: int) -> None:
        self.type_id = type_id
        self._btf = btf
        try:
            self.type_name = btf.type_name(type_id)
            try:
                size: int | None = btf.size_of(type_id)
            except BTFError:
                size = None  # the builder says why in terms of the kind
            if size is not None and size > MAX_LAYOUT_SIZE:
                raise DecodeError(f"lay out {self.type_name}: {size} bytes is too large")
            dtype, conv = _Builder(btf).build(type_id)
            self.size = btf.size_of(type_id) if size is None else size
        except BTFError as exc:
            raise DecodeError(f"lay out type {type_id}: {exc}") from exc
        except (ValueError, TypeError, OverflowError) as exc:  # numpy refused the dtype
            raise DecodeError(f"lay out type {type_id}: {exc}") from exc
        if dtype.itemsize != self.size:
            raise DecodeError(f"lay out {self.type_name}: dtype of {dtype.itemsize} bytes for "
                              f"a type of {self.size}")
        self.dtype: np.dtype[Any] = dtype
        self._conv = conv
        if isinstance(conv, _StructConv):
            self.names: tuple[str, ...] = conv.keys
            self._record_dtype = dtype
        else:
            self.names = ()
            self._record_dtype = np.dtype([(_VALUE_KEY, dtype)])

    def __repr__(self) -> str:
        return f"<Layout {self.type_name} ({self.size} bytes)>"

    def _records(self, records: np.ndarray | bytes | bytearray | memoryview) -> np.ndarray:
        """Records as a 1-D array of this layout's (record) dtype."""
        if isinstance(records, np.ndarray) and records.dtype == self._record_dtype \
                and records.ndim == 1:
            return records
        try:
            raw = np.frombuffer(records, dtype=np.uint8) if not isinstance(records, np.ndarray) \
                else np.ascontiguousarray(records).reshape(-1).view(np.uint8)
        except (ValueError, TypeError) as exc:
            raise DecodeError(f"decode {self.type_name}: {exc}") from exc
        if self.size == 0 or raw.size % self.size:
            raise DecodeError(f"decode {self.type_name}: {raw.size} bytes is not a whole number "
                              f"of {self.size}-byte records")
        return raw.view(self._record_dtype)

    def decode(self, data: bytes | bytearray | memoryview) -> Any:
        """One value from exactly ``size`` bytes."""
        length = memoryview(data).nbytes
        if length != self.size:
            raise DecodeError(f"decode {self.type_name}: got {length} bytes, want {self.size}")
        return self.decode_batch(self._records(data))[0]

    def decode_batch(self, records: np.ndarray) -> list[Any]:
        """One value per record (a dict for structs), computed column by column."""
        recs = self._records(records)
        if isinstance(self._conv, _StructConv):
            return self._conv.column(recs)
        return self._conv.column(recs[_VALUE_KEY])

    def columns(self, records: np.ndarray) -> dict[str, list[Any]]:
        """Python values per member (``{"value": [...]}`` for a type that is not a struct)."""
        recs = self._records(records)
        if isinstance(self._conv, _StructConv):
            return self._conv.columns(recs)
        return {_VALUE_KEY: self._conv.column(recs[_VALUE_KEY])}

    def encode(self, value: Any) -> bytes:
        """The bytes of ``value`` (the inverse of ``decode``); DecodeError if it does not fit."""
        buf = bytearray(self.size)
        _Encoder(self._btf).encode(buf, 0, self.type_id, value, self.type_name)
        return bytes(buf)


# ---------------------------------------------------------------------------------------------
# Encoding (for setting variables: not hot, so straightforward recursion over BTF)


class _Encoder:
    def __init__(self, btf: BTF) -> None:
        self.btf = btf
        self.order: Any = "little" if btf.byte_order == "<" else "big"
        self.depth = 0

    def fail(self, what: str, cause: str) -> DecodeError:
        return DecodeError(f"encode {what}: {cause}")

    def encode(self, buf: bytearray, offset: int, type_id: int, value: Any, what: str) -> None:
        self.depth += 1
        try:
            if self.depth > 64:
                raise self.fail(what, "types nest too deeply")
            self._encode(buf, offset, type_id, value, what)
        finally:
            self.depth -= 1

    def _encode(self, buf: bytearray, offset: int, type_id: int, value: Any, what: str) -> None:
        btf = self.btf
        t = btf[btf.resolve(type_id)]
        name = btf.type_name(type_id)
        if isinstance(t, Int):
            if t.bool:
                if not isinstance(value, (bool, int)) or value not in (0, 1):
                    raise self.fail(what, f"{value!r} is not a bool ({name})")
                value = int(value)
            self._int(buf, offset, t.size, t.signed, value, what, name)
        elif isinstance(t, Ptr):
            self._int(buf, offset, 8, False, value, what, name)
        elif isinstance(t, (Enum, Enum64)):
            if isinstance(value, str):
                for enumerator in t.values:
                    if enumerator.name == value:
                        value = enumerator.value
                        break
                else:
                    known = ", ".join(v.name for v in t.values)
                    raise self.fail(what, f"{value!r} is not an enumerator of {name} ({known})")
            if isinstance(value, int) and not isinstance(value, bool):
                # C converts freely between enums and ints: take either signedness.
                lo, hi = _int_range(t.size * 8, True)[0], _int_range(t.size * 8, False)[1]
                if lo <= value <= hi:
                    value = _wrap(value, t.size * 8, t.signed)
            self._int(buf, offset, t.size, t.signed, value, what, name)
        elif isinstance(t, Float):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise self.fail(what, f"{value!r} is not a number ({name})")
            codes = {2: "e", 4: "f", 8: "d"}
            if t.size not in codes:
                raise self.fail(what, f"{t.size}-byte floats are not supported")
            prefix = "<" if self.order == "little" else ">"
            try:
                struct.pack_into(prefix + codes[t.size], buf, offset, value)
            except (OverflowError, struct.error) as exc:
                raise self.fail(what, f"{value!r} does not fit {name}") from exc
        elif isinstance(t, Array):
            self._array(buf, offset, t, value, what, name)
        elif isinstance(t, (Struct, Union, Datasec)):
            if not isinstance(value, dict):
                raise self.fail(what, f"{value!r} is not a dict ({name})")
            remaining = dict(value)
            self._struct(buf, offset, t, remaining, what, name)
            if remaining:
                raise self.fail(what, f"{name} has no member {next(iter(remaining))!r}")
        else:
            raise self.fail(what, f"a {t.kind.name.lower()} has no value")

    def _int(self, buf: bytearray, offset: int, size: int, signed: bool, value: Any,
             what: str, name: str) -> None:
        if not isinstance(value, int):
            raise self.fail(what, f"{value!r} is not an integer ({name})")
        lo, hi = _int_range(size * 8, signed)
        if not lo <= value <= hi:
            raise self.fail(what, f"{value} is out of range for {name} ({lo}..{hi})")
        buf[offset:offset + size] = int(value).to_bytes(size, self.order, signed=signed)

    def _array(self, buf: bytearray, offset: int, t: Array, value: Any, what: str,
               name: str) -> None:
        btf = self.btf
        if _is_char(btf, t.type) and isinstance(value, (str, bytes)):
            data = value.encode("utf-8") if isinstance(value, str) else value
            if len(data) > t.nelems - 1 or b"\0" in data:
                raise self.fail(what, f"{value!r} is {len(data)} bytes; {name} holds a string "
                                f"of at most {max(t.nelems - 1, 0)} bytes and no NUL")
            buf[offset:offset + len(data)] = data
            return
        if not isinstance(value, (list, tuple)):
            raise self.fail(what, f"{value!r} is not a list ({name})")
        if len(value) > t.nelems:
            raise self.fail(what, f"{len(value)} elements do not fit {name}")
        elem_size = btf.size_of(t.type)
        for i, item in enumerate(value):
            self.encode(buf, offset + i * elem_size, t.type, item, f"{what}[{i}]")

    def _struct(self, buf: bytearray, offset: int, t: Struct | Union | Datasec,
                value: dict[str, Any], what: str, name: str) -> None:
        """Write the members named in ``value``, popping them; anonymous ones recurse."""
        btf = self.btf
        for member, member_type, bit_offset, bitfield_size in _members(btf, t):
            if not member:
                inner = btf[btf.resolve(member_type)]
                if isinstance(inner, (Struct, Union)) and not bitfield_size:
                    self._struct(buf, offset + bit_offset // 8, inner, value, what, name)
                continue
            if member not in value:
                continue
            item = value.pop(member)
            scalar = _scalar_bits(btf, member_type)
            if bitfield_size or scalar is not None:
                bits, extra, _signed_int = scalar or (0, 0, False)
                self._bitfield(buf, offset, bit_offset + extra, bitfield_size or bits,
                               member_type, item, f"{what}.{member}")
            else:
                self.encode(buf, offset + bit_offset // 8, member_type, item,
                            f"{what}.{member}")

    def _bitfield(self, buf: bytearray, offset: int, bit_offset: int, bits: int,
                  type_id: int, value: Any, what: str) -> None:
        btf = self.btf
        scratch = bytearray(btf.size_of(type_id))
        self.encode(scratch, 0, type_id, value, what)  # names, types, range of the whole type
        number = int.from_bytes(scratch, self.order, signed=_signed(btf, type_id))
        if isinstance(btf[btf.resolve(type_id)], (Enum, Enum64)):
            as_signed = _wrap(number, len(scratch) * 8, True)
            low = number & ((1 << bits) - 1)
            if low != number and _wrap(low, bits, True) != as_signed:
                raise self.fail(what, f"{number} does not fit a {bits}-bit field")
            number = low
        lo, hi = _int_range(bits, _signed(btf, type_id))
        if not lo <= number <= hi:
            raise self.fail(what, f"{number} does not fit a {bits}-bit field ({lo}..{hi})")
        start, shift = divmod(bit_offset, 8)
        width = (shift + bits + 7) // 8
        at = offset + start
        unit = int.from_bytes(buf[at:at + width], self.order)
        mask = ((1 << bits) - 1) << shift
        unit = (unit & ~mask) | ((number << shift) & mask)
        buf[at:at + width] = unit.to_bytes(width, self.order)


_CACHE: weakref.WeakKeyDictionary[BTF, dict[int, Layout]] = weakref.WeakKeyDictionary()


def layout_for(btf: BTF, type_id: int) -> Layout:
    """The layout of ``type_id`` in ``btf``, built once and cached with the BTF."""
    per_btf = _CACHE.get(btf)
    if per_btf is None:
        per_btf = _CACHE[btf] = {}
    layout = per_btf.get(type_id)
    if layout is None:
        layout = per_btf[type_id] = Layout(btf, type_id)
    return layout

