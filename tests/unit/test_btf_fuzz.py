"""Bad input never escapes as anything but BTFError (parsing) or DecodeError (layouts)."""

from __future__ import annotations

import io
import sys
from pathlib import Path

from elftools.elf.elffile import ELFFile
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eunomia_bpf.btf import BTF, Kind
from eunomia_bpf.decode import layout_for
from eunomia_bpf.errors import BTFError, DecodeError

sys.path.insert(0, str(Path(__file__).parent / "fixtures"))
from btf_builder import BTFBuilder
from btf_support import VECTORS

FUZZ = settings(max_examples=300, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def _crafted_btf() -> bytes:
    b = BTFBuilder()
    i = b.int_("int", 4, signed=True)
    c = b.int_("char", 1, signed=True, char=True)
    arr = b.array(c, i, 8)
    e = b.enum64("e", 8, [("A", -1), ("B", 2)], signed=True)
    s = b.struct("s", 24, [("a", i, 0, 3), ("b", i, 3, 5), ("name", arr, 32, 0),
                           ("e", e, 128, 0)])
    b.struct("u", 8, [("s", b.ptr(s), 0, 0), ("x", i, 0, 0)], union=True)
    b.decl_tag("t", s, 0)
    b.type_tag("user", b.const(b.typedef("pid_t", i)))
    v = b.var("g", i)
    b.datasec(".bss", 4, [(v, 0, 4)])
    b.func("f", b.func_proto(i, [("x", i), ("", 0)]))
    b.float_("double", 8)
    b.fwd("later")
    return b.build()


def _object(name: str) -> bytes | None:
    path = VECTORS / f"{name}.package.json"
    if not path.exists():
        return None
    import base64
    import json
    import zlib
    return zlib.decompress(base64.b64decode(json.loads(path.read_text())["bpf_object"]))


CRAFTED = _crafted_btf()
OBJECT = _object("bootstrap")
if OBJECT is not None:
    REAL_BTF = ELFFile(io.BytesIO(OBJECT)).get_section_by_name(".BTF").data()
    SEEDS = [CRAFTED, REAL_BTF]
else:
    SEEDS = [CRAFTED]


def _exercise(btf: BTF) -> None:
    """Walk every type the way callers do; only our errors may come out."""
    for type_id in range(len(btf.types)):
        for call in (btf.type_name, btf.size_of, btf.resolve):
            try:
                call(type_id)
            except BTFError:
                pass
        if btf.types[type_id].kind in (Kind.STRUCT, Kind.UNION, Kind.DATASEC):
            try:
                layout = layout_for(btf, type_id)
            except DecodeError:
                continue
            if layout.size > 1 << 16:
                continue
            try:
                layout.decode(bytes(layout.size))
                layout.decode(b"\xff" * layout.size)
            except DecodeError:
                pass


def _mutate(data: bytes, edits: list[tuple[int, int]], cut: int | None) -> bytes:
    buf = bytearray(data)
    for position, byte in edits:
        buf[position % len(buf)] = byte
    return bytes(buf[:cut] if cut is not None else buf)


@FUZZ
@given(st.binary(max_size=512))
def test_arbitrary_bytes_raise_only_btf_error(raw: bytes) -> None:
    for parse in (BTF.from_bytes, BTF.from_elf):
        try:
            btf = parse(raw)
        except BTFError:
            continue
        _exercise(btf)


@FUZZ
@given(st.binary(max_size=256))
def test_arbitrary_bytes_after_a_valid_header_raise_only_btf_error(tail: bytes) -> None:
    raw = CRAFTED[:24] + tail
    try:
        btf = BTF.from_bytes(raw)
    except BTFError:
        return
    _exercise(btf)


@FUZZ
@given(seed=st.sampled_from(SEEDS),
       edits=st.lists(st.tuples(st.integers(0, 2**20), st.integers(0, 255)), max_size=8),
       cut=st.none() | st.integers(0, 2**20))
def test_mutated_btf_raises_only_btf_error(seed: bytes, edits: list[tuple[int, int]],
                                           cut: int | None) -> None:
    # Mutations land mostly in the header and the first types, where the structure is.
    edits = [(p % 400 if p & 1 else p, b) for p, b in edits]
    try:
        btf = BTF.from_bytes(_mutate(seed, edits, cut))
    except BTFError:
        return
    _exercise(btf)


@FUZZ
@given(edits=st.lists(st.tuples(st.integers(0, 2**20), st.integers(0, 255)), min_size=1,
                      max_size=6),
       cut=st.none() | st.integers(0, 2**20))
def test_mutated_elf_raises_only_btf_error(edits: list[tuple[int, int]], cut: int | None) -> None:
    if OBJECT is None:
        return  # without the shared vectors the arbitrary-bytes tests still run
    try:
        BTF.from_elf(_mutate(OBJECT, edits, cut))
    except BTFError:
        pass
