"""BTF parsing: real objects (shared vectors, clang fixtures, vmlinux) and crafted bytes."""

from __future__ import annotations

import struct
import sys
import time
from pathlib import Path

import pytest

from eunomia_bpf.btf import (
    BTF,
    Array,
    Datasec,
    DeclTag,
    Enum,
    Enum64,
    EnumValue,
    Float,
    FuncProto,
    Fwd,
    Int,
    Kind,
    Member,
    Param,
    Ptr,
    Struct,
    Typedef,
    TypeTag,
    Union,
    Void,
)
from eunomia_bpf.errors import BTFError

sys.path.insert(0, str(Path(__file__).parent / "fixtures"))
from btf_builder import BTFBuilder
from btf_support import VMLINUX, compile_fixture, package, package_object


@pytest.fixture(scope="module")
def kinds_btf(tmp_path_factory: pytest.TempPathFactory) -> BTF:
    return BTF.from_elf(compile_fixture("kinds.bpf.c", tmp_path_factory.mktemp("kinds")))


def crafted() -> tuple[BTF, dict[str, int]]:
    """Every kind, including those clang 14 cannot emit."""
    b = BTFBuilder()
    ids: dict[str, int] = {}
    ids["int"] = b.int_("int", 4, signed=True)
    ids["char"] = b.int_("char", 1, signed=True, char=True)
    ids["u64"] = b.int_("unsigned long long", 8)
    ids["cchar"] = b.const(ids["char"])
    ids["pcchar"] = b.ptr(ids["cchar"])
    ids["arr"] = b.array(ids["char"], ids["int"], 16)
    ids["e64"] = b.enum64("big", 8, [("NEG", -5), ("HUGE", 1 << 40)], signed=True)
    ids["e64u"] = b.enum64("bigu", 8, [("TOP", (1 << 64) - 1)])
    ids["e32"] = b.enum("small", 4, [("MINUS", -1), ("ONE", 1)], signed=True)
    ids["fwd"] = b.fwd("later", union=True)
    ids["tag"] = b.type_tag("user", ids["int"])
    ids["ptag"] = b.ptr(ids["tag"])
    ids["float"] = b.float_("double", 8)
    ids["s"] = b.struct("s", 16, [("a", ids["int"], 0, 3), ("b", ids["int"], 3, 5),
                                  ("c", ids["u64"], 64, 0)])
    ids["u"] = b.struct("u", 8, [("x", ids["u64"], 0, 0), ("y", ids["int"], 0, 0)], union=True)
    ids["tag_decl"] = b.decl_tag("note", ids["s"], 1)
    ids["proto"] = b.func_proto(ids["int"], [("ctx", ids["pcchar"]), ("", 0)])
    ids["pproto"] = b.ptr(ids["proto"])
    ids["func"] = b.func("handler", ids["proto"])
    ids["pid_t"] = b.typedef("pid_t", ids["int"])
    ids["vol"] = b.volatile(ids["pid_t"])
    ids["cvol"] = b.const(ids["vol"])
    ids["var"] = b.var("filter", ids["cvol"])
    ids["sec"] = b.datasec(".rodata", 4, [(ids["var"], 0, 4)])
    ids["arr2"] = b.array(ids["arr"], ids["int"], 2)
    ids["parr"] = b.ptr(ids["arr"])
    ids["cptr"] = b.const(ids["pcchar"])
    ids["ps"] = b.ptr(ids["s"])
    ids["restrict"] = b.restrict(ids["ps"])
    return BTF.from_bytes(b.build()), ids


# --- crafted bytes: every kind ------------------------------------------------------------


def test_every_kind_parses_with_its_fields() -> None:
    btf, ids = crafted()
    assert btf[0] == Void()
    assert btf[ids["int"]] == Int("int", 4, True, False, False, 32, 0)
    assert btf[ids["arr"]] == Array(ids["char"], ids["int"], 16)
    assert btf[ids["e64"]] == Enum64("big", 8, True, (EnumValue("NEG", -5),
                                                      EnumValue("HUGE", 1 << 40)))
    assert btf[ids["e64u"]].values == (EnumValue("TOP", (1 << 64) - 1),)  # type: ignore[union-attr]
    assert btf[ids["e32"]] == Enum("small", 4, True, (EnumValue("MINUS", -1), EnumValue("ONE", 1)))
    assert btf[ids["fwd"]] == Fwd("later", True)
    assert btf[ids["tag"]] == TypeTag("user", ids["int"])
    assert btf[ids["float"]] == Float("double", 8)
    assert btf[ids["s"]] == Struct("s", 16, (Member("a", ids["int"], 0, 3),
                                             Member("b", ids["int"], 3, 5),
                                             Member("c", ids["u64"], 64, 0)))
    assert isinstance(btf[ids["u"]], Union)
    assert btf[ids["tag_decl"]] == DeclTag("note", ids["s"], 1)
    assert btf[ids["proto"]] == FuncProto(ids["int"], (Param("ctx", ids["pcchar"]), Param("", 0)))
    assert btf[ids["sec"]] == Datasec(".rodata", 4, btf[ids["sec"]].vars)  # type: ignore[union-attr]
    assert {t.kind for t in btf.types} == set(Kind)


@pytest.mark.parametrize("key, spelling", [
    ("int", "int"),
    ("u64", "unsigned long long"),
    ("arr", "char[16]"),
    ("arr2", "char[2][16]"),
    ("pcchar", "const char *"),
    ("cptr", "const char *const"),
    ("parr", "char (*)[16]"),
    ("e64", "enum big"),
    ("fwd", "union later"),
    ("ptag", "int *"),
    ("s", "struct s"),
    ("u", "union u"),
    ("ps", "struct s *"),
    ("restrict", "struct s *restrict"),
    ("pid_t", "pid_t"),
    ("cvol", "const volatile pid_t"),
    ("var", "const volatile pid_t"),
    ("pproto", "int (*)(const char *, ...)"),
    ("func", "handler"),
    ("sec", ".rodata"),
])
def test_type_name_spells_c(key: str, spelling: str) -> None:
    btf, ids = crafted()
    assert btf.type_name(ids[key]) == spelling


def test_void_pointer_name() -> None:
    b = BTFBuilder()
    ptr = b.ptr(0)
    assert BTF.from_bytes(b.build()).type_name(ptr) == "void *"


@pytest.mark.parametrize("key, size", [
    ("int", 4), ("arr", 16), ("arr2", 32), ("pcchar", 8), ("e64", 8), ("e32", 4),
    ("s", 16), ("u", 8), ("pid_t", 4), ("cvol", 4), ("var", 4), ("sec", 4), ("tag", 4),
    ("float", 8),
])
def test_size_of(key: str, size: int) -> None:
    btf, ids = crafted()
    assert btf.size_of(ids[key]) == size


@pytest.mark.parametrize("key", ["fwd", "func", "proto", "tag_decl"])
def test_size_of_unsized_kinds_is_btf_error(key: str) -> None:
    btf, ids = crafted()
    with pytest.raises(BTFError, match="has no size"):
        btf.size_of(ids[key])
    with pytest.raises(BTFError):
        btf.size_of(0)


def test_resolve_find_and_datasec() -> None:
    btf, ids = crafted()
    assert btf.resolve(ids["cvol"]) == ids["int"]
    assert btf.resolve(ids["tag"]) == ids["int"]
    assert btf.resolve(ids["ps"]) == ids["ps"]
    assert btf.find("s") == ids["s"]
    assert btf.find("pid_t", Kind.TYPEDEF) == ids["pid_t"]
    with pytest.raises(BTFError, match="no such type"):
        btf.find("pid_t", Kind.STRUCT)
    with pytest.raises(BTFError, match="no such type"):
        btf.find("missing")
    sec = btf.datasec(".rodata")
    assert sec is not None and sec.vars[0].type == ids["var"]
    assert btf.datasec(".bss") is None


@pytest.mark.parametrize("bad", [-1, 10_000, "1", None])
def test_getitem_out_of_range_is_btf_error(bad: object) -> None:
    btf, _ids = crafted()
    with pytest.raises(BTFError, match="look up type"):
        btf[bad]  # type: ignore[index]


def test_big_endian_btf_parses() -> None:
    b = BTFBuilder(order=">")
    i = b.int_("int", 4, signed=True)
    s = b.struct("pair", 8, [("a", i, 0, 0), ("b", i, 32, 0)])
    btf = BTF.from_bytes(b.build())
    assert btf.byte_order == ">"
    assert btf[s] == Struct("pair", 8, (Member("a", i, 0, 0), Member("b", i, 32, 0)))


# --- malformed input ----------------------------------------------------------------------


def _good() -> bytes:
    b = BTFBuilder()
    i = b.int_("int", 4, signed=True)
    b.struct("s", 4, [("a", i, 0, 0)])
    return b.build()


def _header(raw: bytes, **fields: int) -> bytes:
    names = ["magic", "version", "flags", "hdr_len", "type_off", "type_len", "str_off", "str_len"]
    values = dict(zip(names, struct.unpack_from("<HBBIIIII", raw)))
    values.update(fields)
    return struct.pack("<HBBIIIII", *values.values()) + raw[24:]


@pytest.mark.parametrize("raw, message", [
    (b"", "too short"),
    (b"\x9f\xeb\x01", "too short"),
    (b"\x00\x00" + bytes(30), "bad magic"),
    (_header(_good(), version=2), "version"),
    (_header(_good(), hdr_len=4), "header length"),
    (_header(_good(), hdr_len=10_000), "header length"),
    (_header(_good(), type_len=10_000), "exceed"),
    (_header(_good(), str_off=2**32 - 1), "exceed"),
    (_header(_good(), type_len=30), "multiple of 4"),
    (_good()[:-8], "exceed"),
])
def test_malformed_headers_are_btf_errors(raw: bytes, message: str) -> None:
    with pytest.raises(BTFError, match=message):
        BTF.from_bytes(raw)


def test_unknown_kind_is_btf_error() -> None:
    b = BTFBuilder()
    b.add(25, "", 0, 0)
    with pytest.raises(BTFError, match="unknown kind 25"):
        BTF.from_bytes(b.build())


def test_type_id_out_of_range_is_btf_error() -> None:
    b = BTFBuilder()
    b.ptr(42)
    with pytest.raises(BTFError, match="refers to type 42"):
        BTF.from_bytes(b.build())


def test_string_offset_out_of_range_is_btf_error() -> None:
    b = BTFBuilder()
    b.types.append(struct.pack("<III", 9999, 8 << 24, 0))
    with pytest.raises(BTFError, match="string offset 9999"):
        BTF.from_bytes(b.build())


def test_truncated_members_are_btf_error() -> None:
    b = BTFBuilder()
    i = b.int_("int", 4)
    b.add(4, "s", 3, 12, b.u32(0, i, 0))  # claims 3 members, has 1
    with pytest.raises(BTFError, match="truncated"):
        BTF.from_bytes(b.build())


def test_cycles_are_btf_errors_not_recursion() -> None:
    b = BTFBuilder()
    b.typedef("a", 2)  # 1 -> 2 -> 1
    b.const(1)
    b.array(3, 0, 2)  # array of itself
    b.ptr(5)  # pointers in a loop: 4 -> 5 -> 4
    b.ptr(4)
    btf = BTF.from_bytes(b.build())
    with pytest.raises(BTFError, match="cycle"):
        btf.resolve(1)
    with pytest.raises(BTFError, match="cycle"):
        btf.size_of(1)
    with pytest.raises(BTFError, match="cycle"):
        btf.size_of(3)
    for type_id in (3, 4):
        with pytest.raises(BTFError, match="cycle"):
            btf.type_name(type_id)
    assert btf.type_name(1) == "a"  # a typedef is spelled by its name alone
    assert btf.size_of(4) == 8


def test_from_elf_rejects_non_elf_and_elf_without_btf(tmp_path: Path) -> None:
    with pytest.raises(BTFError, match="read ELF"):
        BTF.from_elf(b"not an elf at all")
    with pytest.raises(BTFError, match="read ELF"):
        BTF.from_elf(b"")
    with pytest.raises(BTFError, match="no .BTF section"):
        BTF.from_elf(Path(sys.executable).resolve().read_bytes())


# --- real objects -------------------------------------------------------------------------


def test_bootstrap_event_struct_matches_meta() -> None:
    btf = BTF.from_elf(package_object("bootstrap"))
    meta = package("bootstrap")["meta"]["export_types"][0]
    type_id = btf.find("event", Kind.STRUCT)
    assert type_id == meta["type_id"] == 613
    event = btf[type_id]
    assert isinstance(event, Struct)
    assert btf.size_of(type_id) == meta["size"] == 176
    members = [(m.name, btf.type_name(m.type)) for m in event.members]
    assert members == [("pid", "int"), ("ppid", "int"), ("exit_code", "unsigned int"),
                       ("duration_ns", "unsigned long long"), ("comm", "char[16]"),
                       ("filename", "char[127]"), ("exit_event", "bool"),
                       ("et", "enum event_type")]
    assert members == [(m["name"], m["type"]) for m in meta["members"]]
    assert [m.bit_offset // 8 for m in event.members] == [0, 4, 8, 16, 24, 40, 167, 168]


@pytest.mark.parametrize("name", ["bootstrap", "runqlat", "simple"])
def test_vector_export_types_and_variables_match_meta(name: str) -> None:
    btf = BTF.from_elf(package_object(name))
    meta = package(name)["meta"]
    for export in meta.get("export_types") or []:
        type_id = export["type_id"]
        assert btf[type_id].name == export["name"]
        assert btf.size_of(type_id) == export["size"]
        assert [btf.type_name(m.type) for m in btf[type_id].members] == \
            [m["type"] for m in export["members"]]  # type: ignore[union-attr]
    for section in meta["bpf_skel"]["data_sections"]:
        sec = btf.datasec(section["name"])
        assert sec is not None
        names = {btf[v.type].name: btf.type_name(v.type) for v in sec.vars}
        for variable in section["variables"]:
            # the meta drops the "const volatile" that .rodata variables carry
            assert names[variable["name"]].endswith(variable["type"])


def test_datasec_sizes_and_offsets_are_filled_from_the_elf() -> None:
    btf = BTF.from_elf(package_object("runqlat"))
    rodata = btf.datasec(".rodata")
    assert rodata is not None and rodata.size == 12
    offsets = {btf[v.type].name: v.offset for v in rodata.vars}
    assert offsets == {"filter_cg": 0, "targ_per_process": 1, "targ_per_thread": 2,
                       "targ_per_pidns": 3, "targ_ms": 4, "targ_tgid": 8}
    bss = btf.datasec(".bss")
    assert bss is not None and bss.size == 128
    assert [v.offset for v in bss.vars] == [0, 8]


def test_clang_fixture_kinds(kinds_btf: BTF) -> None:
    btf = kinds_btf
    bits = btf[btf.find("bits", Kind.STRUCT)]
    assert isinstance(bits, Struct) and bits.size == 8
    assert [(m.name, m.bit_offset, m.bitfield_size) for m in bits.members] == [
        ("a", 0, 3), ("b", 3, 5), ("c", 10, 40), ("e", 50, 4), ("f", 54, 1), ("tail", 56, 0)]
    everything = btf.find("everything", Kind.STRUCT)
    names = {m.name: btf.type_name(m.type) for m in btf[everything].members}  # type: ignore[union-attr]
    assert names["wide"] == "__int128"
    assert names["uwide"] == "unsigned __int128"
    assert names["grid"] == "char[2][3]"
    assert names["ptr"] == "const char *"
    assert names["tagged"] == "int *"
    assert names["pair"] == "struct inner[2]"
    assert names["fam"] == "int[0]"
    assert names[""] == "union {...}"
    assert btf.size_of(everything) == 160
    wide = btf[btf.resolve(btf[everything].members[3].type)]  # type: ignore[union-attr]
    assert isinstance(wide, Int) and wide.signed and wide.size == 16
    tagged = btf[btf[everything].members[15].type]  # type: ignore[union-attr]
    assert isinstance(tagged, Ptr) and isinstance(btf[tagged.type], TypeTag)
    small = btf[btf.find("small", Kind.ENUM)]
    assert isinstance(small, Enum) and small.size == 1
    assert btf.type_name(btf.find("pid_t")) == "pid_t"
    assert isinstance(btf[btf.find("pid_t")], Typedef)
    bss = btf.datasec(".bss")
    assert bss is not None and bss.size == 200


@pytest.mark.skipif(not VMLINUX.exists(), reason="no /sys/kernel/btf/vmlinux on this kernel")
def test_vmlinux_parses_quickly_with_every_common_kind() -> None:
    raw = VMLINUX.read_bytes()
    start = time.perf_counter()
    btf = BTF.from_bytes(raw)
    elapsed = time.perf_counter() - start
    assert elapsed < 10, f"parsing vmlinux BTF took {elapsed:.1f} s"  # generous: ~0.4 s here
    kinds = {t.kind for t in btf.types}
    assert {Kind.INT, Kind.STRUCT, Kind.UNION, Kind.ENUM, Kind.FUNC, Kind.FUNC_PROTO,
            Kind.DATASEC, Kind.VAR} <= kinds
    task = btf.find("task_struct", Kind.STRUCT)
    assert btf.type_name(task) == "struct task_struct"
    assert btf.size_of(task) > 1000
    pid = next(m for m in btf[task].members if m.name == "pid")  # type: ignore[union-attr]
    assert btf.type_name(pid.type) == "pid_t"
    assert btf.size_of(pid.type) == 4
    comm = next(m for m in btf[task].members if m.name == "comm")  # type: ignore[union-attr]
    assert btf.type_name(comm.type) == "char[16]"
    for type_id in range(len(btf.types)):
        btf.type_name(type_id)  # every type has a spelling, none raises
