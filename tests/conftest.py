"""Shared fixtures: paths to the compatibility vectors and the bundled packages."""

from __future__ import annotations

from pathlib import Path

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
    import json
    import subprocess

    out: dict[str, set[int]] = {}
    for kind in ("prog", "map", "link"):
        done = subprocess.run(["bpftool", "-j", kind, "show"], capture_output=True,
                              text=True, check=True)
        out[kind] = {int(o["id"]) for o in json.loads(done.stdout or "[]")}
    return out


def leaked_objects(before: dict[str, set[int]], *, wait: float = 3.0) -> dict[str, set[int]]:
    """Objects created since ``before`` that are still there after up to ``wait`` seconds
    (the kernel frees maps and links a little after their last fd closes)."""
    import time

    deadline = time.monotonic() + wait
    while True:
        now = kernel_object_ids()
        leaked = {k: now[k] - before[k] for k in now if now[k] - before[k]}
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
