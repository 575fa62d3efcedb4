"""Shared fixtures: paths to the compatibility vectors and the bundled packages."""

from __future__ import annotations

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


def _held_by_other_processes() -> dict[str, set[int]]:
    """Objects some other live process holds an fd to (e.g. a benchmark running beside
    the tests), with what those keep alive: a link's program, a program's maps."""
    import os
    import re
    from pathlib import Path

    held: dict[str, set[int]] = {"prog": set(), "map": set(), "link": set()}
    me = os.getpid()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == me:
            continue
        try:
            for info in (proc / "fdinfo").iterdir():
                text = info.read_text()
                for kind in ("prog", "map", "link"):
                    m = re.search(rf"^{kind}_id:\s*(\d+)", text, re.MULTILINE)
                    if m:
                        held[kind].add(int(m.group(1)))
        except OSError:
            continue
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
