"""What every test folder shares (tests/, examples/): the compatibility vectors, the
kernel-leak check, and a runner for the real ``ecli``. Fixtures are registered by the
repository's root conftest.py."""

from __future__ import annotations

import os
import re
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
VECTORS = REPO.parent / "shared" / "vectors" / "eunomia"


@pytest.fixture
def vectors() -> Path:
    if not VECTORS.is_dir():
        pytest.skip(f"compatibility vectors not found at {VECTORS} "
                    "(they sit beside the repo as shared/vectors in CI)")
    return VECTORS


def vector_path(name: str) -> Path:
    path = VECTORS / f"{name}.package.json"
    if not path.is_file():
        pytest.skip(f"compatibility vector {path} is absent")
    return path


def kernel_object_ids() -> dict[str, set[int]]:
    """Ids of every BPF program, map and link in the kernel right now (via bpftool)."""
    return {kind: set(objs) for kind, objs in _kernel_objects().items()}


def _kernel_objects() -> dict[str, dict[int, dict[str, Any]]]:
    import json
    import subprocess

    out: dict[str, dict[int, dict[str, Any]]] = {}
    for kind in ("prog", "map", "link"):
        done = subprocess.run(["bpftool", "-j", kind, "show"], capture_output=True,
                              text=True, check=True)
        out[kind] = {int(o["id"]): o for o in json.loads(done.stdout or "[]")}
    return out


def fd_held_ids(pid: int | str = "self") -> dict[str, set[int]]:
    """Ids of the BPF links, programs and maps a process holds an fd to (its fdinfo)."""
    from pathlib import Path

    held: dict[str, set[int]] = {"prog": set(), "map": set(), "link": set()}
    try:
        infos = list(Path(f"/proc/{pid}/fdinfo").iterdir())
    except OSError:
        return held
    for info in infos:
        try:
            text = info.read_text()
        except OSError:
            continue
        for kind in ("link", "prog", "map"):  # a link's fdinfo names its prog too
            m = re.search(rf"^{kind}_id:\s*(\d+)", text, re.MULTILINE)
            if m:
                held[kind].add(int(m.group(1)))
                break
    return held


def _held_by_other_processes() -> dict[str, set[int]]:
    """Objects some other live process holds an fd to (e.g. a benchmark running beside
    the tests), with what those keep alive: a link's program, a program's maps."""
    held: dict[str, set[int]] = {"prog": set(), "map": set(), "link": set()}
    me = os.getpid()
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit() and int(proc.name) != me:
            for kind, ids in fd_held_ids(proc.name).items():
                held[kind] |= ids
    return held


def leaked_objects(before: dict[str, set[int]], *, wait: float = 3.0) -> dict[str, set[int]]:
    """Objects created since ``before`` that are still there after up to ``wait`` seconds
    (the kernel frees maps and links a little after their last fd closes) and that no
    other process keeps alive."""
    import time

    deadline = time.monotonic() + wait
    while True:
        objs = _kernel_objects()
        new = {k: set(objs[k]) - before[k] for k in objs}
        if any(new.values()):
            held = _held_by_other_processes()
            for link_id in list(held["link"]):
                prog = objs["link"].get(link_id, {}).get("prog_id")
                if prog is not None:
                    held["prog"].add(int(prog))
            for prog_id in list(held["prog"]):
                held["map"].update(objs["prog"].get(prog_id, {}).get("map_ids", []))
            new = {k: v - held[k] for k, v in new.items()}
        leaked = {k: v for k, v in new.items() if v}
        if not leaked or time.monotonic() > deadline:
            return leaked
        time.sleep(0.1)


@pytest.fixture
def no_leaks() -> object:
    """Fails the test if it leaves any BPF program, map or link in the kernel."""
    import shutil

    if shutil.which("bpftool") is None:
        pytest.fail("bpftool is required to check for leaked kernel objects (apt install bpftool)")
    before = kernel_object_ids()
    yield before
    leaked = leaked_objects(before)
    assert not leaked, f"kernel objects left behind: {leaked}"


ECLI = [sys.executable, "-m", "eunomia_bpf.cli.ecli"]


def require_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("loading eBPF programs needs root (CAP_BPF + CAP_PERFMON)")


class Ecli:
    """A running ``ecli run`` process whose stderr we watched until it attached."""

    def __init__(self, args: Sequence[str], *, stdin: bytes | None = None) -> None:
        self.proc = subprocess.Popen(
            [*ECLI, *args], stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        if stdin is not None:
            assert self.proc.stdin is not None
            self.proc.stdin.write(stdin)
            self.proc.stdin.close()
            self.proc.stdin = None
        self.stderr_head = ""

    def wait_attached(self, timeout: float = 20.0) -> None:
        """Block until ecli says it is running (or fail with what it printed)."""
        assert self.proc.stderr is not None
        sel = selectors.DefaultSelector()
        sel.register(self.proc.stderr, selectors.EVENT_READ)
        deadline = time.monotonic() + timeout
        while not re.search(r"ecli: running .*\n", self.stderr_head):
            left = deadline - time.monotonic()
            if left <= 0 or self.proc.poll() is not None and not sel.select(0):
                _, err = self.finish()
                pytest.fail(f"ecli did not attach: rc={self.proc.returncode} "
                            f"stderr={self.stderr_head + err!r}")
            if sel.select(min(left, 0.5)):
                chunk = os.read(self.proc.stderr.fileno(), 4096).decode(errors="replace")
                if not chunk and self.proc.poll() is not None:
                    continue
                self.stderr_head += chunk
        sel.close()

    def stop(self, sig: int = signal.SIGINT, timeout: float = 20.0) -> tuple[str, str]:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.finish(timeout)

    def finish(self, timeout: float = 30.0) -> tuple[str, str]:
        try:
            out, err = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, err = self.proc.communicate()
            pytest.fail(f"ecli did not stop within {timeout} s")
        return out.decode(errors="replace"), self.stderr_head + err.decode(errors="replace")


@pytest.fixture
def ecli() -> Iterator[type[Ecli]]:
    require_root()
    started: list[Ecli] = []

    class Tracked(Ecli):
        def __init__(self, args: Sequence[str], **kw: bytes | None) -> None:
            super().__init__(args, **kw)
            started.append(self)

    yield Tracked
    for e in started:  # only the processes this test started, by their own handle
        if e.proc.poll() is None:
            e.proc.kill()
            e.proc.wait()


def run_ecli(args: Sequence[str], *, stdin: bytes | None = None,
             timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*ECLI, *args], check=False, input=stdin.decode() if stdin else None,
                          capture_output=True, text=True, timeout=timeout)
