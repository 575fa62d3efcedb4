"""Helpers for the loader and attach kernel tests: build, spec, leak checks, veth netns."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from eunomia_bpf.btf import BTF
from eunomia_bpf.spec import ProgramSpec, VariableSpec
from tests.support import fd_held_ids

PROGS = Path(__file__).resolve().parent / "progs"
CLANG_FLAGS = ["-g", "-O2", "-target", "bpf", "-D__TARGET_ARCH_x86",
               "-I/usr/include/x86_64-linux-gnu"]


class Builder:
    """Compiles ``progs/<name>.bpf.c`` into a tmp dir, with a vmlinux.h made once."""

    def __init__(self, out: Path) -> None:
        self.out = out
        vmlinux = out / "vmlinux.h"
        with vmlinux.open("w") as f:
            subprocess.run(["bpftool", "btf", "dump", "file", "/sys/kernel/btf/vmlinux",
                            "format", "c"], stdout=f, check=True)
        self._cache: dict[tuple[str, tuple[str, ...]], bytes] = {}

    def object(self, name: str, *defines: str) -> bytes:
        key = (name, defines)
        if key not in self._cache:
            target = self.out / f"{name}-{len(self._cache)}.bpf.o"
            subprocess.run(["clang", *CLANG_FLAGS, f"-I{self.out}",
                            *(f"-D{d}" for d in defines),
                            "-c", str(PROGS / f"{name}.bpf.c"), "-o", str(target)],
                           check=True, capture_output=True)
            self._cache[key] = target.read_bytes()
        return self._cache[key]


def variables_of(elf: bytes) -> tuple[VariableSpec, ...]:
    """Every global of .rodata/.bss/.data, as the spec layer would describe it."""
    btf = BTF.from_elf(elf)
    out = []
    for section in (".rodata", ".bss", ".data"):
        datasec = btf.datasec(section)
        for info in datasec.vars if datasec else ():
            out.append(VariableSpec(name=btf[info.type].name, section=section,
                                    offset=info.offset, size=info.size, type_id=info.type,
                                    type_name=""))
    return tuple(out)


def make_spec(name: str, elf: bytes, programs: tuple[ProgramSpec, ...] = ()) -> Any:
    """An ObjectSpec-shaped object: what load() reads (name, object, programs, variables)."""
    return SimpleNamespace(name=name, object=elf, programs=programs, maps=(),
                           variables=variables_of(elf))


def held_ids() -> set[tuple[str, int]]:
    """(prog|map|link, id) of every BPF object this process holds an fd to."""
    return {(kind, i) for kind, ids in fd_held_ids().items() for i in ids}


def alive_ids() -> set[tuple[str, int]]:
    alive = set()
    for kind in ("prog", "map", "link"):
        out = subprocess.run(["bpftool", kind, "show", "-j"], check=True,
                             capture_output=True, text=True).stdout
        alive |= {(kind, obj["id"]) for obj in json.loads(out or "[]")}
    return alive


def wait_gone(ids: set[tuple[str, int]], timeout: float = 5.0) -> set[tuple[str, int]]:
    """The ids still alive after ``timeout`` (the kernel frees some asynchronously)."""
    deadline = time.monotonic() + timeout
    while (left := ids & alive_ids()) and time.monotonic() < deadline:
        time.sleep(0.05)
    return left


def run(*cmd: str) -> str:
    return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout


@dataclass
class VethPair:
    """``host`` (this netns, 10.250.250.1) <-> ``peer`` (in ``netns``, 10.250.250.2)."""

    netns: str
    host: str
    peer: str
    host_ip: str = "10.250.250.1"
    peer_ip: str = "10.250.250.2"
    extra: list[str] = field(default_factory=list)

    def send_from_peer(self, count: int = 3) -> None:
        """``count`` UDP datagrams from the peer to the host end (port 9, discard)."""
        script = ("import socket, time\n"
                  "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
                  f"for _ in range({count}):\n"
                  f"    s.sendto(b'x', ('{self.host_ip}', 9)); time.sleep(0.05)\n")
        run("ip", "netns", "exec", self.netns, sys.executable, "-c", script)


@contextlib.contextmanager
def veth_in_netns() -> Iterator[VethPair]:
    tag = f"eut{os.getpid() % 100000}"
    pair = VethPair(netns=f"{tag}ns", host=f"{tag}a", peer=f"{tag}b")
    run("ip", "netns", "add", pair.netns)
    try:
        run("ip", "link", "add", pair.host, "type", "veth", "peer", "name", pair.peer,
            "netns", pair.netns)
        run("ip", "addr", "add", f"{pair.host_ip}/30", "dev", pair.host)
        run("ip", "link", "set", pair.host, "up")
        run("ip", "netns", "exec", pair.netns, "ip", "addr", "add", f"{pair.peer_ip}/30",
            "dev", pair.peer)
        run("ip", "netns", "exec", pair.netns, "ip", "link", "set", pair.peer, "up")
        run("ip", "netns", "exec", pair.netns, "ip", "link", "set", "lo", "up")
        yield pair
    finally:
        subprocess.run(["ip", "link", "del", pair.host], capture_output=True, check=False)
        subprocess.run(["ip", "netns", "del", pair.netns], capture_output=True,
                       check=False)


# A user-space program with one USDT probe, eunomia_test:hit(long), written without
# <sys/sdt.h> (systemtap-sdt-dev is not installed here): the note is what sdt.h emits.
USDT_TARGET_C = r"""
#include <stdio.h>
#include <stdlib.h>

__attribute__((noinline)) void hit(long value)
{
	__asm__ __volatile__(
		"990: nop\n"
		".pushsection .note.stapsdt,\"?\",\"note\"\n"
		".balign 4\n"
		".4byte 992f-991f, 994f-993f, 3\n"
		"991: .asciz \"stapsdt\"\n"
		"992: .balign 4\n"
		"993: .8byte 990b\n"
		".8byte _.stapsdt.base\n"
		".8byte 0\n"
		".asciz \"eunomia_test\"\n"
		".asciz \"hit\"\n"
		".asciz \"-8@%0\"\n"
		"994: .balign 4\n"
		".popsection\n"
		".ifndef _.stapsdt.base\n"
		".pushsection .stapsdt.base,\"aG\",\"progbits\",.stapsdt.base,comdat\n"
		".weak _.stapsdt.base\n"
		".hidden _.stapsdt.base\n"
		"_.stapsdt.base: .space 1\n"
		".size _.stapsdt.base, 1\n"
		".popsection\n"
		".endif\n"
		:: "r"(value));
}

int main(int argc, char **argv)
{
	long count = argc > 1 ? atol(argv[1]) : 1;
	char line[16];

	/* Wait until the test has attached, then fire the probe count times. */
	if (!fgets(line, sizeof(line), stdin))
		return 1;
	for (long i = 1; i <= count; i++)
		hit(i);
	return 0;
}
"""


def build_usdt_target(out: Path) -> Path:
    source = out / "usdt_target.c"
    source.write_text(USDT_TARGET_C)
    binary = out / "usdt_target"
    subprocess.run(["gcc", "-O2", "-o", str(binary), str(source)], check=True,
                   capture_output=True)
    return binary


DATAGRAMS = 3
DISCARD_PORT = 9  # where VethPair.send_from_peer sends
UDP_FRAME_LEN = 14 + 20 + 8 + 1  # Ethernet + IPv4 + UDP headers + the one-byte payload


def capture_datagrams(ecli: Any, veth: VethPair, tool: str, *package_args: str,
                      attached: Callable[[str], None],
                      detached: Callable[[str], None]) -> list[dict[str, Any]]:
    """``ecli run --json --ifname <host end> TOOL`` while the peer sends DATAGRAMS that
    the host end must all receive (the program passes them on); ``attached(ifname)``
    checks the hook while it runs, ``detached(ifname)`` that nothing is left after."""
    import json
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as receiver:
        receiver.bind((veth.host_ip, DISCARD_PORT))
        receiver.settimeout(5)
        run_ = ecli(["run", "--json", "--ifname", veth.host, tool, *package_args])
        run_.wait_attached()
        attached(veth.host)
        veth.send_from_peer(DATAGRAMS)
        for _ in range(DATAGRAMS):
            assert receiver.recv(16) == b"x"
    time.sleep(0.3)
    out, err = run_.stop()
    assert run_.proc.returncode == 0, err
    detached(veth.host)
    return [json.loads(line) for line in out.splitlines()]
