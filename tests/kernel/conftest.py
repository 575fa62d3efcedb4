"""Fixtures for kernel tests: a BPF compiler with vmlinux.h, and a leak-checking load()."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from .helpers import Builder, held_ids, wait_gone


def _require_kernel_tools() -> None:
    if os.geteuid() != 0:
        pytest.skip("kernel tests need root (they load BPF programs)")
    for tool in ("clang", "bpftool"):
        if shutil.which(tool) is None:
            pytest.skip(f"kernel tests need {tool} to build their BPF programs")


def _ensure_mounted(path: str, fstype: str) -> None:
    with open("/proc/self/mounts") as f:
        if any(line.split()[1] == path for line in f):
            return
    subprocess.run(["mount", "-t", fstype, fstype, path], check=True)


@pytest.fixture(scope="session")
def bpf_builder(tmp_path_factory: pytest.TempPathFactory) -> Builder:
    """Compiles tests/kernel/progs/<name>.bpf.c (with a vmlinux.h of this kernel)."""
    _require_kernel_tools()
    _ensure_mounted("/sys/kernel/tracing", "tracefs")
    _ensure_mounted("/sys/fs/bpf", "bpf")
    return Builder(tmp_path_factory.mktemp("bpf"))


@pytest.fixture
def load_checked() -> Iterator[Callable[..., Any]]:
    """``eunomia_bpf.loader.load`` that, after the test, checks nothing of it is left.

    It records every prog, map and link id this process holds right after each load;
    once the test is over (and the programs are closed, twice), bpftool must list none.
    """
    from eunomia_bpf.loader import load

    before = held_ids()
    ours: set[tuple[str, int]] = set()
    running: list[Any] = []

    def _load(*args: Any, **kwargs: Any) -> Any:
        program = load(*args, **kwargs)
        running.append(program)
        ours.update(held_ids() - before)
        return program

    yield _load
    for program in running:
        program.close()
        program.close()
    assert ours or not running, "a loaded program should hold BPF objects"
    left = wait_gone(ours)
    assert not left, f"BPF objects left in the kernel after close: {sorted(left)}"


@pytest.fixture
def no_new_objects() -> Iterator[None]:
    """For loads expected to fail: no object this process made may survive the failure."""
    before = held_ids()
    yield
    assert held_ids() - before == set(), "a failed load left BPF fds open in this process"

