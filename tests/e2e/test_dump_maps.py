"""``ecli run --dump-maps``: every user map printed at exit, bpftrace style or as JSON.

``tests/kernel/progs/maps_dump.bpf.c`` counts this test's getppid(2) calls in a hash map,
a hash map with a struct key and a per-CPU array; its data sections, ring buffer and
stack map must not be printed.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.support import Ecli

pytestmark = pytest.mark.kernel

SOURCE = Path(__file__).resolve().parents[1] / "kernel" / "progs" / "maps_dump.bpf.c"
CALLS = 7


@pytest.fixture(scope="module")
def dump_package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from eunomia_bpf.build import ToolNotFoundError, build_package

    try:
        data = build_package(SOURCE)
    except ToolNotFoundError as exc:
        pytest.skip(f"cannot compile test programs: {exc}")
    path = tmp_path_factory.mktemp("dump-maps") / "maps_dump.package.json"
    path.write_bytes(data)
    return path


def run_and_call(ecli: type[Ecli], *args: str) -> tuple[str, str]:
    run = ecli(["run", "--dump-maps", *args, "--targ_pid", str(os.getpid())])
    run.wait_attached()
    for _ in range(CALLS):
        os.getppid()
    out, err = run.stop()
    assert run.proc.returncode == 0, err
    return out, err


def test_dump_maps_prints_user_maps_bpftrace_style(ecli: type[Ecli], dump_package: Path,
                                                   no_leaks: object) -> None:
    out, _ = run_and_call(ecli, str(dump_package))
    dumped = [line for line in out.splitlines() if line.startswith("@")]
    comm = Path("/proc/self/comm").read_text().strip()
    assert f"@calls[{os.getpid()}]: {CALLS}" in dumped
    assert f"@by_comm[{os.getpid()}, {comm}]: {CALLS}" in dumped
    assert f"@per_cpu[3]: {CALLS}" in dumped  # summed over CPUs; unwritten slots left out
    assert len(dumped) == 3, dumped  # no stacks, events, .bss or .rodata


def test_dump_maps_json_objects(ecli: type[Ecli], dump_package: Path,
                                no_leaks: object) -> None:
    out, _ = run_and_call(ecli, "--json", str(dump_package))
    objects = [json.loads(line) for line in out.splitlines() if line.strip()]
    by_map = {(o["map"], json.dumps(o["key"], sort_keys=True)): o["value"] for o in objects}
    comm = Path("/proc/self/comm").read_text().strip()
    assert by_map == {
        ("calls", str(os.getpid())): CALLS,
        ("by_comm", json.dumps({"comm": comm, "pid": os.getpid()}, sort_keys=True)): CALLS,
        ("per_cpu", "3"): CALLS,
    }


def test_without_dump_maps_nothing_is_dumped(ecli: type[Ecli], dump_package: Path,
                                             no_leaks: object) -> None:
    run = ecli(["run", str(dump_package), "--targ_pid", str(os.getpid())])
    run.wait_attached()
    os.getppid()
    out, err = run.stop()
    assert run.proc.returncode == 0, err
    assert not [line for line in out.splitlines() if line.startswith("@")]
