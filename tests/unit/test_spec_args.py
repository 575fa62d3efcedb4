from __future__ import annotations

from pathlib import Path

import pytest

from eunomia_bpf import ArgumentError, ObjectSpec, read_package
from eunomia_bpf.args import encode_arguments, format_help, parse_arguments
from eunomia_bpf.resolve import bundled_dir
from eunomia_bpf.spec import MapType


def spec_of(path: Path) -> ObjectSpec:
    return ObjectSpec.from_package(read_package(path.read_bytes()))


def test_bootstrap_vector_spec(vectors: Path) -> None:
    spec = spec_of(vectors / "bootstrap.package.json")
    assert [(p.name, p.section) for p in spec.programs] == [
        ("handle_exec", "tp/sched/sched_process_exec"),
        ("handle_exit", "tp/sched/sched_process_exit")]
    assert spec.map("rb").map_type == MapType.RINGBUF
    assert spec.map("exec_start").map_type == MapType.HASH
    assert spec.map("rodata").name == ".rodata"  # ecc's "client_b.rodata"
    (export,) = spec.exports
    assert export.map_name == "rb" and export.type_name == "struct event"
    (arg,) = spec.arguments
    assert (arg.name, arg.section, arg.offset, arg.size, arg.type_name) == (
        "min_duration_ns", ".rodata", 0, 8, "unsigned long long")


def test_simple_vector_has_no_export(vectors: Path) -> None:
    spec = spec_of(vectors / "simple.package.json")
    assert spec.exports == ()
    assert [v.type_name for v in spec.arguments] == ["pid_t"]


def test_runqlat_vector_maps_and_samples(vectors: Path) -> None:
    spec = spec_of(vectors / "runqlat.package.json")
    hists = spec.map("hists")
    assert hists.sample is not None and hists.sample["type"] == "log2_hist"
    assert [p.section for p in spec.programs] == [
        "raw_tp/sched_wakeup", "raw_tp/sched_wakeup_new", "raw_tp/sched_switch"]


def test_help_shows_doc_types_and_defaults(vectors: Path) -> None:
    text = format_help(spec_of(vectors / "runqlat.package.json"))
    assert "--targ_tgid" in text and "pid_t" in text and "[default: 0]" in text
    assert "--targ_ms" in text and "[default: false]" in text


def test_bool_rules_and_int_parsing(vectors: Path) -> None:
    spec = spec_of(vectors / "runqlat.package.json")
    got = parse_arguments(spec, ["--targ_ms", "--disable-targ-per-thread",
                                 "--enable-filter_cg", "--targ-tgid", "0x10"])
    assert got == {"targ_ms": True, "targ_per_thread": False, "filter_cg": True,
                   "targ_tgid": 16}
    data = encode_arguments(spec, got)
    assert data["targ_tgid"] == (16).to_bytes(4, "little")
    assert data["targ_ms"] == b"\x01" and data["targ_per_thread"] == b"\x00"


@pytest.mark.parametrize("argv, message", [
    (["--targ_tgid", "abc"], "not a valid pid_t"),
    (["--targ_tgid", "99999999999"], "out of range"),
    (["--no-such-option"], "No such option"),
    (["--targ_ms=1"], "does not take a value"),
    (["--targ_tgid"], "requires an argument"),
    (["stray"], "unexpected extra argument"),
])
def test_bad_arguments_are_one_clear_error(vectors: Path, argv: list[str],
                                           message: str) -> None:
    spec = spec_of(vectors / "runqlat.package.json")
    with pytest.raises(ArgumentError, match=message) as info:
        parse_arguments(spec, argv)
    assert "\n" not in str(info.value)


def test_unsigned_rejects_negative(vectors: Path) -> None:
    spec = spec_of(vectors / "bootstrap.package.json")
    with pytest.raises(ArgumentError, match="min_duration_ns"):
        parse_arguments(spec, ["--min_duration_ns", "-1"])
    assert parse_arguments(spec, ["--min_duration_ns", "18446744073709551615"])


def test_bundled_packages_have_specs_and_typed_exports() -> None:
    for path in sorted(bundled_dir().glob("*.package.json")):
        spec = spec_of(path)
        assert spec.programs, path.name
        assert all(e.type_name.startswith("struct ") for e in spec.exports), path.name
    assert spec_of(bundled_dir() / "opensnoop.package.json").exports


@pytest.fixture(scope="module")
def argtypes() -> ObjectSpec:
    from eunomia_bpf.build import ToolNotFoundError, build_package

    try:
        data = build_package(Path(__file__).parent / "fixtures" / "argtypes.bpf.c")
    except ToolNotFoundError as exc:
        pytest.skip(f"cannot compile the fixture: {exc}")
    return ObjectSpec.from_package(read_package(data))


def test_every_type_has_its_default_and_name(argtypes: ObjectSpec) -> None:
    got = {v.name: (v.type_name, v.default) for v in argtypes.arguments}
    assert got["v_u8"] == ("__u8", 200)
    assert got["v_s64"] == ("__s64", -9000000000000000000)
    assert got["v_u64"] == ("__u64", 18000000000000000000)
    assert got["v_pid"] == ("pid_t", 42)
    assert got["v_float"] == ("float", 1.5)
    assert got["v_double"] == ("double", -2.25)
    assert got["v_name"] == ("char[8]", "abc")
    assert got["v_mode"] == ("enum mode", "MODE_AUTO")
    assert got["flag_true"] == ("bool", True)


@pytest.mark.parametrize("option, text, encoded", [
    ("v_u8", "255", b"\xff"),
    ("v_s8", "-128", b"\x80"),
    ("v_u16", "0xffff", b"\xff\xff"),
    ("v_s16", "-2", b"\xfe\xff"),
    ("v_u32", "4294967295", b"\xff\xff\xff\xff"),
    ("v_s32", "-1", b"\xff\xff\xff\xff"),
    ("v_u64", "1", (1).to_bytes(8, "little")),
    ("v_s64", "-9223372036854775808", (1 << 63).to_bytes(8, "little")),
    ("v_pid", "1234", (1234).to_bytes(4, "little")),
    ("v_float", "0.5", b"\x00\x00\x00\x3f"),
    ("v_double", "2", b"\x00\x00\x00\x00\x00\x00\x00\x40"),
    ("v_name", "xyz1234", b"xyz1234\x00"),
    ("v_mode", "MODE_ON", b"\x01\x00\x00\x00"),
    ("v_mode", "0", b"\x00\x00\x00\x00"),
])
def test_values_encode_little_endian(argtypes: ObjectSpec, option: str, text: str,
                                     encoded: bytes) -> None:
    given = parse_arguments(argtypes, [f"--{option}", text])
    assert encode_arguments(argtypes, given)[option] == encoded


@pytest.mark.parametrize("option, text", [
    ("v_u8", "256"), ("v_s8", "-129"), ("v_u16", "-1"), ("v_s16", "40000"),
    ("v_u32", "4294967296"), ("v_s32", "2147483648"), ("v_u64", "-1"),
    ("v_s64", "9223372036854775808"), ("v_float", "abc"), ("v_name", "12345678"),
    ("v_mode", "MODE_NOPE"), ("v_pid", "1.5"),
])
def test_out_of_range_values_are_refused(argtypes: ObjectSpec, option: str,
                                         text: str) -> None:
    with pytest.raises(ArgumentError, match=option):
        parse_arguments(argtypes, [f"--{option}", text])


def test_bool_switches_follow_eunomia(argtypes: ObjectSpec) -> None:
    assert parse_arguments(argtypes, ["--flag_false"]) == {"flag_false": True}
    assert parse_arguments(argtypes, ["--disable-flag_true"]) == {"flag_true": False}
    assert parse_arguments(argtypes, ["--enable-flag-false"]) == {"flag_false": True}
    assert parse_arguments(argtypes, []) == {}


def test_undeclared_defaults_are_not_rewritten(argtypes: ObjectSpec) -> None:
    assert encode_arguments(argtypes, {}) == {}
    with pytest.raises(ArgumentError, match="no such variable"):
        encode_arguments(argtypes, {"nope": 1})
