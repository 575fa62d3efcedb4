"""Decoding BTF-typed bytes to Python values (single and column-wise) and encoding back."""

from __future__ import annotations

import struct
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eunomia_bpf.btf import BTF, Kind
from eunomia_bpf.decode import Layout, layout_for
from eunomia_bpf.errors import DecodeError

sys.path.insert(0, str(Path(__file__).parent / "fixtures"))
from btf_builder import BTFBuilder
from btf_support import compile_fixture, package_object


@pytest.fixture(scope="module")
def kinds(tmp_path_factory: pytest.TempPathFactory) -> BTF:
    return BTF.from_elf(compile_fixture("kinds.bpf.c", tmp_path_factory.mktemp("kinds")))


def struct_layout(btf: BTF, name: str) -> Layout:
    return layout_for(btf, btf.find(name, Kind.STRUCT))


EVERYTHING: dict[str, Any] = {
    "pid": -5, "comm": "héllo", "slots": [1, 2, 3], "wide": -(2**100), "uwide": 2**127 + 5,
    "f": 1.5, "d": -2.25, "sign": "POS", "small": "SMALL_B", "big": "BIG_B",
    "either": {"word": 0x01020304, "bytes": [4, 3, 2, 1], "halves": {"lo": 0x0304, "hi": 0x0102}},
    "inner": {"x": 9, "name": "abc"}, "pair": [{"x": 1, "name": "p"}, {"x": 2, "name": "q"}],
    "grid": ["ab", "cd"], "ptr": 0xDEAD, "tagged": 1, "ok": True,
    "anon_a": -1, "anon_b": 0xFFFFFFFF, "fam": [],
}


# --- real packages ------------------------------------------------------------------------


def test_bootstrap_event_layout_and_values() -> None:
    btf = BTF.from_elf(package_object("bootstrap"))
    layout = layout_for(btf, 613)
    assert layout.size == layout.dtype.itemsize == 176
    assert layout.names == ("pid", "ppid", "exit_code", "duration_ns", "comm", "filename",
                            "exit_event", "et")
    assert [layout.dtype.fields[n][1] for n in layout.names] == [0, 4, 8, 16, 24, 40, 167, 168]
    raw = bytearray(176)
    struct.pack_into("<iiI4xQ", raw, 0, 1234, -1, 7, 10**12)
    raw[24:24 + 5] = b"bash\0"
    raw[40:40 + 12] = b"/usr/bin/ls\0"
    raw[167] = 1
    struct.pack_into("<I", raw, 168, 1)
    expected = {"pid": 1234, "ppid": -1, "exit_code": 7, "duration_ns": 10**12, "comm": "bash",
                "filename": "/usr/bin/ls", "exit_event": True, "et": "EVENT_TYPE__EXIT"}
    assert layout.decode(bytes(raw)) == expected
    assert layout.encode(expected) == bytes(raw)
    records = np.frombuffer(bytes(raw) * 3, dtype=layout.dtype)
    assert layout.decode_batch(records) == [expected] * 3
    columns = layout.columns(records)
    assert columns["comm"] == ["bash"] * 3
    assert columns["et"] == ["EVENT_TYPE__EXIT"] * 3
    struct.pack_into("<I", raw, 168, 9)  # no enumerator: the number
    assert layout.decode(bytes(raw))["et"] == 9


def test_runqlat_hist_and_rodata() -> None:
    btf = BTF.from_elf(package_object("runqlat"))
    hist = layout_for(btf, 22)
    value = {"slots": list(range(26)), "comm": "x" * 15}
    assert hist.decode(hist.encode(value)) == value
    with pytest.raises(DecodeError, match="at most 15 bytes"):
        hist.encode({"comm": "x" * 16})
    rodata = layout_for(btf, btf.find(".rodata", Kind.DATASEC))
    assert rodata.size == 12
    assert rodata.names == ("filter_cg", "targ_per_process", "targ_per_thread", "targ_per_pidns",
                            "targ_ms", "targ_tgid")
    raw = rodata.encode({"targ_ms": True, "targ_tgid": 4242})
    assert raw == bytes([0, 0, 0, 0, 1, 0, 0, 0]) + struct.pack("<i", 4242)
    assert rodata.decode(raw)["targ_tgid"] == 4242


# --- clang fixture: every layout feature --------------------------------------------------


def test_flat_struct_batches_column_wise(kinds: BTF) -> None:
    layout = struct_layout(kinds, "flat")
    assert layout.dtype == np.dtype({"names": ["ts", "pid", "cpu", "x"],
                                     "formats": ["<u8", "<u4", "<u4", "<u8"],
                                     "offsets": [0, 8, 12, 16], "itemsize": 24})
    records = np.zeros(1000, dtype=layout.dtype)
    records["ts"] = np.arange(1000)
    records["pid"] = 7
    records["x"] = 2**64 - 1
    rows = layout.decode_batch(records)
    assert rows[999] == {"ts": 999, "pid": 7, "cpu": 0, "x": 2**64 - 1}
    assert layout.columns(records)["ts"] == list(range(1000))
    # raw bytes and uint8 views decode the same
    raw = records.tobytes()
    assert layout.decode_batch(np.frombuffer(raw, dtype=np.uint8).reshape(1000, 24)) == rows
    assert layout.decode(raw[24 * 5:24 * 6]) == rows[5]
    assert layout.decode_batch(records[:0]) == []


def test_everything_round_trips(kinds: BTF) -> None:
    layout = struct_layout(kinds, "everything")
    assert layout.size == 160
    raw = layout.encode(EVERYTHING)
    assert layout.decode(raw) == EVERYTHING
    assert layout.decode_batch(np.frombuffer(raw * 4, dtype=layout.dtype)) == [EVERYTHING] * 4
    # anonymous union members are merged into the parent, as C spells them
    assert "anon_a" in layout.names and "" not in layout.names


def test_int128_limits(kinds: BTF) -> None:
    layout = struct_layout(kinds, "everything")
    for wide, uwide in [(-(2**127), 0), (2**127 - 1, 2**128 - 1)]:
        assert layout.decode(layout.encode({"wide": wide, "uwide": uwide}))["wide"] == wide
        assert layout.decode(layout.encode({"wide": wide, "uwide": uwide}))["uwide"] == uwide
    with pytest.raises(DecodeError, match=r"out of range for unsigned __int128 \(0\.\.\d+\)"):
        layout.encode({"uwide": 2**128})


def test_char_array_stops_at_nul_and_replaces_bad_utf8(kinds: BTF) -> None:
    layout = struct_layout(kinds, "everything")
    raw = bytearray(layout.encode({}))
    raw[4:12] = b"ab\0cdefg"
    assert layout.decode(bytes(raw))["comm"] == "ab"
    raw[4:12] = b"\xff\xfeabcdef"  # no NUL at all, not UTF-8
    assert layout.decode(bytes(raw))["comm"] == "\ufffd\ufffdabcdef"


def test_bitfields(kinds: BTF) -> None:
    layout = struct_layout(kinds, "bits")
    assert layout.names == ("a", "b", "c", "e", "f", "tail")  # the unnamed padding has no value
    value = {"a": 5, "b": -7, "c": 2**40 - 3, "e": "NEG", "f": True, "tail": 200}
    raw = layout.encode(value)
    # a=5 in bits 0..2, b=-7 (0b11001) in bits 3..7 -> 0b11001101
    assert raw[0] == 0b11001_101
    assert layout.decode(raw) == value
    records = np.frombuffer(raw * 10, dtype=layout.dtype)
    assert layout.columns(records)["b"] == [-7] * 10
    assert layout.columns(records)["e"] == ["NEG"] * 10
    for field, bad in [("a", 8), ("b", 16), ("b", -17), ("c", 2**40)]:
        with pytest.raises(DecodeError, match="bit field"):
            layout.encode({field: bad})
    # set only one field: others stay zero
    assert layout.decode(layout.encode({"c": 1}))["c"] == 1
    assert layout.decode(layout.encode({"e": "POS"}))["e"] == "POS"


def test_union_members_overlap(kinds: BTF) -> None:
    layout = layout_for(kinds, kinds.find("either", Kind.UNION))
    assert layout.size == 4
    assert layout.decode(struct.pack("<I", 0xAABBCCDD)) == {
        "word": 0xAABBCCDD, "bytes": [0xDD, 0xCC, 0xBB, 0xAA],
        "halves": {"lo": 0xCCDD, "hi": 0xAABB}}


def test_layouts_of_non_struct_types(kinds: BTF) -> None:
    everything = kinds[kinds.find("everything", Kind.STRUCT)]
    by_name = {m.name: m.type for m in everything.members}  # type: ignore[union-attr]
    slots = layout_for(kinds, by_name["slots"])
    assert slots.names == () and slots.size == 12
    assert slots.decode(struct.pack("<3I", 1, 2, 3)) == [1, 2, 3]
    assert slots.columns(np.frombuffer(struct.pack("<3I", 1, 2, 3) * 2, dtype=np.uint8)) == \
        {"value": [[1, 2, 3], [1, 2, 3]]}
    comm = layout_for(kinds, by_name["comm"])
    assert comm.decode(comm.encode("bpf")) == "bpf"
    pid = layout_for(kinds, by_name["pid"])
    assert pid.type_name == "pid_t"
    assert pid.decode(pid.encode(-2**31)) == -2**31
    with pytest.raises(DecodeError, match=r"encode pid_t: 2147483648 is out of range for pid_t "
                                          r"\(-2147483648\.\.2147483647\)"):
        pid.encode(2**31)
    sign = layout_for(kinds, by_name["sign"])
    assert sign.decode(sign.encode("NEG")) == "NEG"
    assert sign.decode(sign.encode(-2)) == "NEG"  # C converts ints to enums freely
    assert sign.decode(struct.pack("<I", 3)) == 3
    flt = layout_for(kinds, by_name["d"])
    assert flt.decode(flt.encode(0.1)) == 0.1
    ok = layout_for(kinds, by_name["ok"])
    assert ok.decode(b"\x01") is True and ok.decode(b"\x00") is False


def test_enum64_and_signed_enums_from_crafted_btf() -> None:
    b = BTFBuilder()
    e64 = b.enum64("big", 8, [("NEG", -5), ("HUGE", 1 << 40)], signed=True)
    u64 = b.enum64("bigu", 8, [("TOP", (1 << 64) - 1)])
    e32 = b.enum("small", 4, [("MINUS", -1), ("ONE", 1)], signed=True)
    half = b.float_("_Float16", 2)
    s = b.struct("s", 24, [("a", e64, 0, 0), ("b", u64, 64, 0), ("c", e32, 128, 0),
                           ("h", half, 160, 0)])
    btf = BTF.from_bytes(b.build())
    layout = layout_for(btf, s)
    value = {"a": "NEG", "b": "TOP", "c": "MINUS", "h": 0.5}
    raw = layout.encode(value)
    assert raw[:8] == struct.pack("<q", -5) and raw[8:16] == b"\xff" * 8
    assert layout.decode(raw) == value
    assert layout.decode(layout.encode({"a": 1 << 40, "c": 1}))["a"] == "HUGE"
    assert layout.decode(layout.encode({"a": 3}))["a"] == 3
    with pytest.raises(DecodeError, match="not an enumerator of enum big"):
        layout.encode({"a": "NOPE"})


@pytest.mark.parametrize("value, message", [
    ({"pid": "1"}, "is not an integer"),
    ({"pid": 1.0}, "is not an integer"),
    ({"ok": 2}, "is not a bool"),
    ({"f": "x"}, "is not a number"),
    ({"f": 1e300}, "does not fit float"),
    ({"comm": "123456789"}, "at most 7 bytes"),
    ({"comm": "a\0b"}, "no NUL"),
    ({"slots": [1, 2, 3, 4]}, "4 elements do not fit __u32\\[3\\]"),
    ({"slots": 5}, "is not a list"),
    ({"inner": 5}, "is not a dict"),
    ({"inner": {"y": 1}}, "has no member 'y'"),
    ({"nope": 1}, "has no member 'nope'"),
    ({"sign": "BAD"}, "not an enumerator of enum signedness \\(NEG, ZERO, POS\\)"),
    ({"small": 256}, "out of range"),
    ({"ptr": -1}, "out of range for const char \\*"),
    ({"pair": [{"x": 2**31}]}, "encode struct everything.pair\\[0\\].x"),
    ([], "is not a dict"),
])
def test_encode_rejects_bad_values(kinds: BTF, value: Any, message: str) -> None:
    with pytest.raises(DecodeError, match=message):
        struct_layout(kinds, "everything").encode(value)


def test_decode_rejects_wrong_sizes(kinds: BTF) -> None:
    layout = struct_layout(kinds, "flat")
    with pytest.raises(DecodeError, match="got 23 bytes, want 24"):
        layout.decode(bytes(23))
    with pytest.raises(DecodeError, match="whole number of 24-byte records"):
        layout.decode_batch(np.zeros(25, dtype=np.uint8))


def test_layout_for_is_cached_and_refuses_types_without_values(kinds: BTF) -> None:
    type_id = kinds.find("flat", Kind.STRUCT)
    assert layout_for(kinds, type_id) is layout_for(kinds, type_id)
    with pytest.raises(DecodeError, match="has no value layout"):
        layout_for(kinds, kinds.find("prog", Kind.FUNC))
    with pytest.raises(DecodeError, match="lay out type 99999"):
        layout_for(kinds, 99999)


# --- properties ---------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=24, max_size=24))
def test_flat_bytes_round_trip(raw: bytes) -> None:
    btf = _flat_btf()
    layout = layout_for(btf, 3)
    value = layout.decode(raw)
    assert value == dict(zip(("ts", "pid", "cpu", "x"), struct.unpack("<QIIQ", raw)))
    assert layout.encode(value) == raw


def _flat_btf() -> BTF:
    b = BTFBuilder()
    u64 = b.int_("unsigned long long", 8)
    u32 = b.int_("unsigned int", 4)
    b.struct("flat", 24, [("ts", u64, 0, 0), ("pid", u32, 64, 0), ("cpu", u32, 96, 0),
                          ("x", u64, 128, 0)])
    return BTF.from_bytes(b.build())


@settings(max_examples=200, deadline=None)
@given(a=st.integers(0, 7), b=st.integers(-16, 15), c=st.integers(0, 2**40 - 1),
       e=st.sampled_from(["NEG", "ZERO", "POS"]), f=st.booleans(), tail=st.integers(0, 255))
def test_bitfield_values_round_trip(kinds: BTF, **value: Any) -> None:
    layout = struct_layout(kinds, "bits")
    assert layout.decode(layout.encode(value)) == value


@settings(max_examples=100, deadline=None)
@given(st.binary(min_size=160, max_size=160))
def test_batch_equals_single_decodes(kinds: BTF, raw: bytes) -> None:
    layout = struct_layout(kinds, "everything")
    single = layout.decode(raw)
    assert layout.decode_batch(np.frombuffer(raw * 2, dtype=layout.dtype)) == [single] * 2 \
        or single["f"] != single["f"] or single["d"] != single["d"]  # NaN != NaN
