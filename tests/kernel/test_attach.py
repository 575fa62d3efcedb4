"""Each attach kind this kernel supports really fires; the refused ones say what is missing.

Programs count into a ``.bss`` variable read live through ``section_view``; tracing
programs count only this test's process (``targ_pid``), so the expected counts are exact.
"""

from __future__ import annotations

import os
import socket
import struct
import subprocess
import time
from collections.abc import Callable
from typing import Any

import pytest

from eunomia_bpf.attach import IterLink, TcLink
from eunomia_bpf.errors import NotSupportedError
from eunomia_bpf.loader import AttachOptions, RunningProgram
from eunomia_bpf.spec import ProgramSpec

from .helpers import Builder, build_usdt_target, make_spec, run, veth_in_netns

pytestmark = pytest.mark.kernel

Load = Callable[..., RunningProgram]


def _pid(pid: int | None = None) -> dict[str, bytes]:
    return {"targ_pid": struct.pack("<i", os.getpid() if pid is None else pid)}


def _u64(program: RunningProgram, name: str = "hits") -> int:
    """A live __u64 global of .bss, by name."""
    var = next(v for v in program.spec.variables if v.name == name)
    view = program.section_view(var.section)
    value: int = struct.unpack_from("<Q", view, var.offset)[0]
    return value


def _load(builder: Builder, load: Load, name: str, values: dict[str, bytes] | None = None,
          programs: tuple[ProgramSpec, ...] = (), **kwargs: Any) -> RunningProgram:
    return load(make_spec(name, builder.object(name), programs), values or _pid(), **kwargs)


@pytest.mark.parametrize("name, kind", [
    ("attach_tp", "tracepoint"),
    ("attach_raw_tp", "raw_tp"),
    ("attach_tp_btf", "tp_btf"),
])
def test_tracepoint_kinds_count_getppid(bpf_builder: Builder, load_checked: Load,
                                        name: str, kind: str) -> None:
    program = _load(bpf_builder, load_checked, name)
    assert [link.kind for link in program.links] == [kind]
    for _ in range(7):
        os.getppid()
    assert _u64(program) == 7


def test_uprobe_and_uretprobe_on_libc_getpid(bpf_builder: Builder, load_checked: Load) -> None:
    program = _load(bpf_builder, load_checked, "attach_uprobe")
    assert sorted(link.kind for link in program.links) == ["uprobe", "uretprobe"]
    for _ in range(4):
        os.getpid()
    assert _u64(program, "hits") == 4
    assert _u64(program, "returns") == 4


def test_usdt_probe_with_argument(bpf_builder: Builder, load_checked: Load,
                                  tmp_path: Any) -> None:
    binary = build_usdt_target(tmp_path)
    elf = bpf_builder.object("attach_usdt", f'USDT_BINARY="{binary}"')
    child = subprocess.Popen([str(binary), "5"], stdin=subprocess.PIPE)
    try:
        program = load_checked(make_spec("attach_usdt", elf), _pid(child.pid))
        assert [link.kind for link in program.links] == ["usdt"]
        child.communicate(b"go\n", timeout=10)
    finally:
        child.kill()
        child.wait()
    assert child.returncode == 0
    assert _u64(program, "hits") == 5
    assert _u64(program, "arg_sum") == 1 + 2 + 3 + 4 + 5  # the probe's argument arrived


def test_perf_event_samples_every_cpu(bpf_builder: Builder, load_checked: Load) -> None:
    program = _load(bpf_builder, load_checked, "attach_perf_event",
                    programs=(ProgramSpec("on_sample", "perf_event", True,
                                          {"sample_freq": 200}),))
    (link,) = program.links
    assert link.kind == "perf_event"
    deadline = time.monotonic() + 5
    while _u64(program, "samples") < 10 and time.monotonic() < deadline:
        sum(range(100_000))  # keep a CPU busy so cpu-clock fires
    assert _u64(program, "samples") >= 10


def test_perf_event_link_covers_online_cpus(bpf_builder: Builder, load_checked: Load) -> None:
    from eunomia_bpf._libbpf import online_cpus

    program = _load(bpf_builder, load_checked, "attach_perf_event",
                    programs=(ProgramSpec("on_sample", "perf_event", True,
                                          {"sample_period": 1_000_000}),))
    (link,) = program.links
    assert len(link) == len(online_cpus())  # type: ignore[arg-type]
    assert "period 1000000" in link.target


def test_iter_task_lists_this_process(bpf_builder: Builder, load_checked: Load) -> None:
    program = _load(bpf_builder, load_checked, "attach_iter")
    (link,) = program.links
    assert isinstance(link, IterLink)
    out = link.read().decode()
    assert out.splitlines() == [f"pid {os.getpid()} comm {_comm()}"]
    assert link.read().decode() == out  # each read walks the tasks again


def _comm() -> str:
    with open("/proc/self/comm") as f:
        return f.read().strip()


def test_cgroup_skb_counts_our_udp(bpf_builder: Builder, load_checked: Load) -> None:
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.bind(("127.0.0.1", 0))
    port = receiver.getsockname()[1]
    try:
        values = {**_pid(), "udp_port": struct.pack("<H", port)}
        program = _load(bpf_builder, load_checked, "attach_cgroup_skb", values)
        (link,) = program.links
        assert link.kind == "cgroup" and link.target.startswith("/sys/fs/cgroup")
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
            for _ in range(3):
                sender.sendto(b"x", ("127.0.0.1", port))
        assert _u64(program) == 3
    finally:
        receiver.close()


def test_socket_filter_loads_without_link(bpf_builder: Builder, load_checked: Load,
                                          caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("INFO", logger="eunomia_bpf.attach"):
        program = _load(bpf_builder, load_checked, "attach_socket")
    assert program.links == ()
    assert program.programs["keep_all"].fd >= 0
    assert "socket filter" in caplog.text and "not attached" in caplog.text


def test_xdp_on_veth_in_netns(bpf_builder: Builder, load_checked: Load) -> None:
    with veth_in_netns() as veth:
        program = _load(bpf_builder, load_checked, "attach_xdp",
                        attach=AttachOptions(ifname=veth.host))
        (link,) = program.links
        assert link.kind == "xdp"
        assert "xdp" in run("ip", "link", "show", "dev", veth.host)
        veth.send_from_peer(3)
        assert _u64(program) >= 3
        program.close()
        assert "prog/xdp" not in run("ip", "link", "show", "dev", veth.host)


def test_xdp_with_flags_goes_by_netlink_and_detaches(bpf_builder: Builder,
                                                    load_checked: Load) -> None:
    with veth_in_netns() as veth:
        ifindex = socket.if_nametoindex(veth.host)
        program = _load(bpf_builder, load_checked, "attach_xdp",
                        programs=(ProgramSpec("count_xdp", "xdp", True, {
                            "ifindex": ifindex, "flags": 2, "xdpopts": {"old_prog_fd": 0}}),))
        (link,) = program.links
        assert "flags 0x2" in link.target
        assert "xdpgeneric" in run("ip", "link", "show", "dev", veth.host)  # SKB mode
        veth.send_from_peer(2)
        assert _u64(program) >= 2
        program.close()
        assert "xdpgeneric" not in run("ip", "link", "show", "dev", veth.host)


def _tc_spec(ifindex: int, point: str = "BPF_TC_INGRESS") -> tuple[ProgramSpec, ...]:
    return (ProgramSpec("count_tc", "tc", True, {
        "tchook": {"ifindex": ifindex, "attach_point": point},
        "tcopts": {"handle": 1, "priority": 1}}),)


def test_tc_ingress_on_veth_creates_and_removes_clsact(bpf_builder: Builder,
                                                       load_checked: Load) -> None:
    with veth_in_netns() as veth:
        program = _load(bpf_builder, load_checked, "attach_tc",
                        programs=_tc_spec(socket.if_nametoindex(veth.host)))
        (link,) = program.links
        assert isinstance(link, TcLink) and link.created_hook
        assert "clsact" in run("tc", "qdisc", "show", "dev", veth.host)
        veth.send_from_peer(3)
        assert _u64(program) >= 3
        program.close()
        assert "clsact" not in run("tc", "qdisc", "show", "dev", veth.host)


def test_tc_keeps_a_clsact_it_did_not_create(bpf_builder: Builder, load_checked: Load) -> None:
    with veth_in_netns() as veth:
        run("tc", "qdisc", "add", "dev", veth.host, "clsact")
        program = _load(bpf_builder, load_checked, "attach_tc",
                        programs=_tc_spec(socket.if_nametoindex(veth.host), "BPF_TC_EGRESS"))
        (link,) = program.links
        assert isinstance(link, TcLink) and not link.created_hook
        assert "direct-action" in run("tc", "filter", "show", "dev", veth.host, "egress")
        program.close()
        assert "clsact" in run("tc", "qdisc", "show", "dev", veth.host)
        assert run("tc", "filter", "show", "dev", veth.host, "egress").strip() == ""


def test_kprobe_is_not_supported_here(bpf_builder: Builder, no_new_objects: None) -> None:
    from eunomia_bpf.loader import load

    _skip_if_kprobes()
    spec = make_spec("refused_kprobe", bpf_builder.object("refused_kprobe"))
    with pytest.raises(NotSupportedError) as info:
        load(spec, _pid())
    assert str(info.value) == ("attach program on_open: this kernel does not support kprobes "
                               "(kprobe attach returned ENOENT)")
    assert info.value.feature == "kprobe"


def test_kprobe_multi_is_not_supported_here(bpf_builder: Builder,
                                            no_new_objects: None) -> None:
    from eunomia_bpf.loader import load

    _skip_if_kprobes()
    spec = make_spec("refused_kprobe_multi", bpf_builder.object("refused_kprobe_multi"))
    with pytest.raises(NotSupportedError, match="does not support kprobe.multi"):
        load(spec, _pid())


def _skip_if_kprobes() -> None:
    from eunomia_bpf.attach.kprobe import kernel_has_kprobes

    if kernel_has_kprobes():
        pytest.skip("this kernel has kprobes, so their refusal cannot be shown")
