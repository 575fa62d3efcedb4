"""The loader against the real kernel: variables, verifier and feature errors, maps, live
.bss views, link policy, and that nothing stays in the kernel after close or a failure."""

from __future__ import annotations

import json
import os
import struct
import subprocess
from collections.abc import Callable

import pytest

from eunomia_bpf.errors import ArgumentError, LoadError, NotSupportedError, VerifierError
from eunomia_bpf.loader import RunningProgram, load
from eunomia_bpf.spec import ProgramSpec

from .helpers import Builder, held_ids, make_spec

pytestmark = pytest.mark.kernel

Load = Callable[..., RunningProgram]


def _pid(pid: int) -> dict[str, bytes]:
    return {"targ_pid": struct.pack("<i", pid)}


def _hits(program: RunningProgram) -> int:
    var = next(v for v in program.spec.variables if v.name == "hits")
    value: int = struct.unpack_from("<Q", program.section_view(".bss"), var.offset)[0]
    return value


def test_variables_reach_rodata_before_load(bpf_builder: Builder, load_checked: Load) -> None:
    elf = bpf_builder.object("attach_tp")
    mine = load_checked(make_spec("mine", elf), _pid(os.getpid()))
    other = load_checked(make_spec("other", elf), _pid(1))  # init never calls getppid here
    for _ in range(3):
        os.getppid()
    assert (_hits(mine), _hits(other)) == (3, 0)


@pytest.mark.parametrize("values, message", [
    ({"targ_pid": b"\x01\x00"}, "set variable targ_pid: expected 4 bytes, got 2"),
    ({"no_such": b"\x00"}, "set variable no_such: t has no such variable"),
])
def test_bad_values_are_argument_errors(bpf_builder: Builder, no_new_objects: None,
                                        values: dict[str, bytes], message: str) -> None:
    with pytest.raises(ArgumentError) as info:
        load(make_spec("t", bpf_builder.object("attach_tp")), values)
    assert str(info.value) == message


def test_verifier_rejection_keeps_log_and_summarises(bpf_builder: Builder,
                                                     no_new_objects: None) -> None:
    with pytest.raises(VerifierError) as info:
        load(make_spec("bad", bpf_builder.object("refused_verifier")), _pid(os.getpid()))
    err = info.value
    assert err.program == "unchecked_lookup"
    assert "\n" not in str(err)
    assert str(err) == ("load program unchecked_lookup: verifier rejected it: "
                        "R0 invalid mem access 'map_value_or_null'")
    assert "processed" in err.log and err.log.count("\n") > 3  # the whole log is kept


def test_fentry_refused_at_load_names_the_feature(bpf_builder: Builder,
                                                  no_new_objects: None) -> None:
    with pytest.raises(NotSupportedError) as info:
        load(make_spec("fe", bpf_builder.object("refused_fentry")), _pid(os.getpid()))
    assert str(info.value) == ("load program do_open: this kernel does not allow fentry/fexit "
                               "programs (BPF trampolines refused: EPERM)")
    assert info.value.feature == "fentry/fexit"


def test_failed_attach_undoes_earlier_links(bpf_builder: Builder) -> None:
    from eunomia_bpf.attach.kprobe import kernel_has_kprobes

    if kernel_has_kprobes():
        pytest.skip("this kernel has kprobes; the refused attach cannot be provoked")
    before = held_ids()
    with pytest.raises(NotSupportedError, match="then_refused: this kernel does not support"):
        load(make_spec("mixed", bpf_builder.object("attach_mixed")), _pid(os.getpid()))
    assert held_ids() == before
    # The tracepoint program attached before the failure is gone from the kernel.
    progs = json.loads(subprocess.run(["bpftool", "prog", "show", "-j"], capture_output=True,
                                      text=True, check=True).stdout or "[]")
    assert "first_ok" not in {p.get("name") for p in progs}


def test_bad_elf_is_a_load_error(no_new_objects: None) -> None:
    with pytest.raises(LoadError, match=r"^open object junk: "):
        load(make_spec_raw("junk", b"\x7fELF not really"), {})


def make_spec_raw(name: str, elf: bytes) -> object:
    from types import SimpleNamespace

    return SimpleNamespace(name=name, object=elf, programs=(), maps=(), variables=())


def test_link_false_loads_without_attaching(bpf_builder: Builder, load_checked: Load) -> None:
    spec = make_spec("quiet", bpf_builder.object("attach_tp"),
                     (ProgramSpec("on_getppid", "tp/syscalls/sys_enter_getppid", False, {}),))
    program = load_checked(spec, _pid(os.getpid()))
    assert program.links == ()
    assert program.programs["on_getppid"].fd >= 0
    os.getppid()
    assert _hits(program) == 0


def test_maps_describe_the_kernel_maps(bpf_builder: Builder, load_checked: Load) -> None:
    program = load_checked(make_spec("maps", bpf_builder.object("attach_tp")),
                           _pid(os.getpid()))
    bss = next(h for name, h in program.maps.items() if name.endswith(".bss"))
    assert (bss.map_type, bss.key_size, bss.value_size, bss.max_entries) == (2, 4, 8, 1)
    info = json.loads(subprocess.run(["bpftool", "map", "show", "name", bss.name, "-j"],
                                     capture_output=True, text=True, check=True).stdout)
    assert any(m["bytes_value"] == 8 and m["type"] == "array" for m in
               (info if isinstance(info, list) else [info]))


def test_section_view_is_live_and_read_only(bpf_builder: Builder, load_checked: Load) -> None:
    program = load_checked(make_spec("view", bpf_builder.object("attach_tp")),
                           _pid(os.getpid()))
    view = program.section_view(".bss")
    assert view.readonly and len(view) == 8
    assert program.section_view(".bss") is view  # one mapping per section
    before = struct.unpack_from("<Q", view)[0]
    os.getppid()
    os.getppid()
    assert struct.unpack_from("<Q", view)[0] == before + 2
    with pytest.raises(TypeError):
        view[0] = 1
    with pytest.raises(ArgumentError, match="no such data section"):
        program.section_view(".data.nope")
    del view


def test_close_is_idempotent_and_a_context_manager(bpf_builder: Builder) -> None:
    before = held_ids()
    with load(make_spec("ctx", bpf_builder.object("attach_tp")), _pid(os.getpid())) as program:
        assert held_ids() - before
        link = program.links[0]
    assert program.closed and link.closed
    program.close()
    link.close()
    assert held_ids() == before


def test_many_links_close_together(bpf_builder: Builder, load_checked: Load) -> None:
    program = load_checked(make_spec("many", bpf_builder.object("attach_many")),
                           _pid(os.getpid()))
    links = program.links
    assert len(links) == 8
    os.getppid()
    assert _hits(program) == 2  # enter and exit of getppid
    program.close()
    assert all(link.closed for link in links)


def test_libbpf_messages_go_to_logging(bpf_builder: Builder,
                                       caplog: pytest.LogCaptureFixture) -> None:
    spec = make_spec("logged", bpf_builder.object("attach_tp"))
    with caplog.at_level("DEBUG", logger="eunomia_bpf.libbpf"), load(spec, _pid(os.getpid())):
        pass
    assert any(r.name == "eunomia_bpf.libbpf" and "libbpf:" in r.getMessage()
               for r in caplog.records)
