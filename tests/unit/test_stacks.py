"""Stacks without the kernel: kallsyms parsing, ELF symbols of binaries built here (PIE,
shared object, stripped), which fields are stacks, and folded-stack aggregation."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from eunomia_bpf.output.folded import FoldedSink, FoldedStacks
from eunomia_bpf.package import read_package
from eunomia_bpf.spec import ObjectSpec
from eunomia_bpf.stacks import (
    UNKNOWN,
    ElfSymbols,
    KernelSymbols,
    Symbolizer,
    parse_maps,
    stack_plans,
)

PACKAGES = Path(__file__).resolve().parents[2] / "src" / "eunomia_bpf" / "packages"

KALLSYMS = """\
ffffffff81000000 T _stext
ffffffff81000000 T startup_64
ffffffff81001000 t do_one_initcall
ffffffff81002000 D some_data
ffffffff81003000 W weak_helper
ffffffffc0001000 t ext4_lookup\t[ext4]
0000000000000000 T hidden_when_not_root
not-an-address T junk
short
"""


def test_kallsyms_code_symbols_by_address() -> None:
    syms = KernelSymbols.from_text(KALLSYMS)
    assert len(syms) == 4  # data, zero addresses and junk lines left out; one per address
    assert syms.lookup(0xFFFFFFFF81000000) == "_stext"  # the first name of an address
    assert syms.lookup(0xFFFFFFFF81000FFF) == "_stext"
    assert syms.lookup(0xFFFFFFFF81001234) == "do_one_initcall"
    assert syms.lookup(0xFFFFFFFF81002010) == "do_one_initcall"  # data is not a function
    assert syms.lookup(0xFFFFFFFF81003001) == "weak_helper"
    assert syms.lookup(0xFFFFFFFFC0001010) == "ext4_lookup"  # module symbols
    assert syms.lookup(0xFFFFFFFF80000000) is None


def test_symbolizer_kernel_frames_and_return_addresses() -> None:
    sym = Symbolizer(kallsyms=lambda: KernelSymbols.from_text(KALLSYMS), proc="/nonexistent")
    # the second frame is a return address right after a call at the end of
    # do_one_initcall: looked up one byte back, it still names the caller
    assert sym.frames(None, [0xFFFFFFFF81001010, 0xFFFFFFFF81003000]) == [
        "do_one_initcall", "do_one_initcall"]
    assert sym.frames(None, [0xFFFFFFFF70000000]) == ["0xffffffff70000000"]


def test_user_frames_of_a_process_that_is_gone_are_unknown(tmp_path: Path) -> None:
    sym = Symbolizer(kallsyms=lambda: KernelSymbols(()), proc=str(tmp_path))
    assert sym.frames(4242, [0x401000, 0x401100]) == [UNKNOWN, UNKNOWN]
    assert sym.frames(None, [0x401000]) == ["0x401000"]  # no pid: nothing to look in


def test_parse_maps_keeps_executable_mappings() -> None:
    text = """\
55d0c8a00000-55d0c8a01000 r--p 00000000 08:01 1234   /usr/bin/prog
55d0c8a01000-55d0c8a02000 r-xp 00001000 08:01 1234   /usr/bin/prog
7f0000000000-7f0000021000 rw-p 00000000 00:00 0
7f1000000000-7f1000001000 r-xp 00000000 00:00 0      [vdso]
7f2000000000-7f2000001000 r-xp 00000000 00:00 0
7f3000000000-7f3000001000 r-xp 00002000 08:01 99     /tmp/with space.so (deleted)
"""
    maps = parse_maps(text)
    assert [(hex(m.start), m.offset, m.path) for m in maps] == [
        ("0x55d0c8a01000", 0x1000, "/usr/bin/prog"),
        ("0x7f1000000000", 0, "[vdso]"),
        ("0x7f2000000000", 0, ""),
        ("0x7f3000000000", 0x2000, "/tmp/with space.so (deleted)"),
    ]


# -- ELF symbols of programs built by the test -------------------------------------------
LIB_C = """
int eunomia_lib_function(int x) { return x * 3 + 1; }
"""
MAIN_C = r"""
#include <stdio.h>
int eunomia_lib_function(int x);
int eunomia_main_function(int x) { return x + 2; }
static int eunomia_static_function(int x) { return x - 1; }
int main(void) {
    printf("%p %p %p\n", (void *)eunomia_main_function, (void *)eunomia_static_function,
           (void *)eunomia_lib_function);
    FILE *f = fopen("/proc/self/maps", "r");
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0)
        fwrite(buf, 1, n, stdout);
    return eunomia_static_function(eunomia_lib_function(0)) - 0;
}
"""


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("gcc") is None:
        pytest.skip("gcc is not installed (apt-get install gcc)")
    d = tmp_path_factory.mktemp("elf")
    (d / "lib.c").write_text(LIB_C)
    (d / "main.c").write_text(MAIN_C)
    flags = ["-O0", "-g", "-fno-omit-frame-pointer"]
    subprocess.run(["gcc", *flags, "-shared", "-fPIC", "-o", d / "libeunomiatest.so",
                    d / "lib.c"], check=True)
    subprocess.run(["gcc", *flags, "-pie", "-fPIE", "-o", d / "main", d / "main.c",
                    f"-L{d}", "-leunomiatest", f"-Wl,-rpath,{d}"], check=True)
    shutil.copy(d / "libeunomiatest.so", d / "libstripped.so")
    subprocess.run(["strip", "--strip-all", d / "libstripped.so"], check=True)
    return d


def _run_main(built: Path) -> tuple[list[int], str]:
    out = subprocess.run([built / "main"], capture_output=True, text=True, check=True).stdout
    first, _, maps = out.partition("\n")
    return [int(a, 16) for a in first.split()], maps


def _lookup(symbols_of: dict[str, ElfSymbols], maps_text: str, address: int) -> str | None:
    for region in parse_maps(maps_text):
        if region.start <= address < region.end:
            return symbols_of[region.path].lookup(address - region.start + region.offset)
    raise AssertionError(f"{address:#x} is in no executable mapping")


def test_runtime_addresses_of_a_pie_and_a_shared_object_name_their_functions(
        built: Path) -> None:
    (main_fn, static_fn, lib_fn), maps = _run_main(built)
    symbols_of = {str(built / "main"): ElfSymbols.from_file(str(built / "main")),
                  str(built / "libeunomiatest.so"):
                      ElfSymbols.from_file(str(built / "libeunomiatest.so"))}
    paths = {r.path for r in parse_maps(maps)}
    symbols_of.update({p: ElfSymbols(()) for p in paths if p not in symbols_of})
    assert _lookup(symbols_of, maps, main_fn) == "eunomia_main_function"
    assert _lookup(symbols_of, maps, main_fn + 4) == "eunomia_main_function"
    assert _lookup(symbols_of, maps, static_fn) == "eunomia_static_function"  # .symtab
    assert _lookup(symbols_of, maps, lib_fn + 1) == "eunomia_lib_function"


def test_stripped_library_falls_back_to_dynsym(built: Path) -> None:
    full = ElfSymbols.from_file(str(built / "libeunomiatest.so"))
    stripped = ElfSymbols.from_file(str(built / "libstripped.so"))
    # the same file offsets name the exported function from .dynsym alone
    exported = [off for off in range(0, 0x4000, 4)
                if full.lookup(off) == "eunomia_lib_function"]
    assert exported
    assert {stripped.lookup(off) for off in exported} == {"eunomia_lib_function"}


def test_not_an_elf_is_an_error(tmp_path: Path) -> None:
    from eunomia_bpf.errors import EunomiaError

    (tmp_path / "x").write_text("hello")
    with pytest.raises(EunomiaError, match="read symbols of"):
        ElfSymbols.from_file(str(tmp_path / "x"))


def test_symbolizer_reads_a_live_process(built: Path, tmp_path: Path) -> None:
    """Through a fake /proc holding the maps the program printed: the symbolizer finds
    the file of each address and names the function; unmapped addresses stay hex."""
    (main_fn, _static, lib_fn), maps = _run_main(built)
    (tmp_path / "77").mkdir()
    (tmp_path / "77" / "maps").write_text(maps)
    sym = Symbolizer(kallsyms=lambda: KernelSymbols(()), proc=str(tmp_path))
    assert sym.frames(77, [lib_fn + 2, main_fn + 9, 0x10]) == [
        "eunomia_lib_function", "eunomia_main_function", "0x10"]


# -- which fields are stacks --------------------------------------------------------------
def _profile() -> tuple[ObjectSpec, dict[str, Any]]:
    pkg = read_package((PACKAGES / "profile.package.json").read_bytes())
    return ObjectSpec.from_package(pkg), json.loads(json.dumps(pkg.bpf_skel))


def test_profile_stack_ids_are_found_by_the_interpreter_mark() -> None:
    spec, skel = _profile()
    [events] = [m for m in skel["maps"] if m["name"] == "events"]
    assert events["intepreter"] == {"stack_trace": {}}
    [plan] = stack_plans(spec, skel)
    assert plan.export_map == "events"
    assert plan.stack_map == "stack_traces"
    assert plan.pid_field == "pid"
    assert [(f.field, f.column, f.kind) for f in plan.fields] == [
        ("kstack_id", "kstack", "id"), ("ustack_id", "ustack", "id")]


def test_stack_id_names_suffice_without_the_mark() -> None:
    spec, skel = _profile()
    for m in skel["maps"]:
        m.pop("intepreter", None)
    [plan] = stack_plans(spec, skel)
    assert plan.columns == ("kstack", "ustack")


def test_no_stack_map_no_stack_ids() -> None:
    pkg = read_package((PACKAGES / "bootstrap.package.json").read_bytes())
    assert stack_plans(ObjectSpec.from_package(pkg), pkg.bpf_skel) == []


# -- folded output --------------------------------------------------------------------------
def test_folded_stacks_count_outermost_first() -> None:
    stacks = FoldedStacks()
    # columns hold frames innermost first; user stacks nest outside kernel stacks
    stacks.add_sample("busy", [["spin", "main"], []])
    stacks.add_sample("busy", [["spin", "main"], []])
    stacks.add_sample("busy", [["syscall", "main"], ["__x64_sys_getppid", "do_syscall_64"]])
    stacks.add_sample("odd;name", [["a;b"]])
    stacks.add_sample("idle", [[], []])
    assert stacks.lines() == [
        "busy;main;spin 2",
        "busy;main;syscall;do_syscall_64;__x64_sys_getppid 1",
        "idle 1",
        "odd:name;a:b 1",
    ]
    assert len(stacks) == 5


def test_folded_sink_aggregates_batches_and_writes_at_close() -> None:
    out = io.BytesIO()
    sink = FoldedSink(out)
    cols: dict[str, list[Any]] = {"comm": ["a", "a", "b"], "pid": [1, 1, 2],
            "kstack": [[], ["k1", "k0"], []], "ustack": [["u1", "u0"], ["u1", "u0"], ["x"]]}
    names = ("comm", "pid", "kstack", "ustack")
    sink.records("events", names, cols, 3)
    sink.flush()
    sink.records("events", names, cols, 3)
    sink.lines(["ignored"])
    sink.flush()
    assert out.getvalue() == b""  # nothing until the end of the run
    sink.close()
    assert out.getvalue().decode().splitlines() == [
        "a;u0;u1 2", "a;u0;u1;k0;k1 2", "b;x 2"]


def test_folded_sink_with_an_interval_starts_over() -> None:
    now = [100.0]
    out = io.BytesIO()
    sink = FoldedSink(out, interval=1.0, clock=lambda: now[0])
    cols: dict[str, list[Any]] = {"comm": ["a"], "ustack": [["f"]]}
    sink.records("events", ("comm", "ustack"), cols, 1)
    sink.flush()
    assert out.getvalue() == b""
    now[0] = 101.5
    sink.flush()
    assert out.getvalue() == b"a;f 1\n"
    sink.records("events", ("comm", "ustack"), cols, 1)
    sink.close()
    assert out.getvalue() == b"a;f 1\na;f 1\n"


def test_batch_extra_columns_reach_dicts_and_columns() -> None:
    from eunomia_bpf.decode import layout_for
    from eunomia_bpf.runner import Batch

    spec, _ = _profile()
    layout = layout_for(spec.btf, spec.exports[0].type_id)
    records = np.zeros(2, dtype=layout.dtype)
    records["kstack_id"] = [-14, 3]
    batch = Batch("events", records=records, layout=layout,
                  extra={"kstack": [[], ["schedule", "do_syscall_64"]]})
    assert batch.names[-1] == "kstack" and batch.names.count("kstack") == 1
    assert batch.columns()["kstack"][1] == ["schedule", "do_syscall_64"]
    assert [d["kstack"] for d in batch.to_dicts()] == [[], ["schedule", "do_syscall_64"]]
