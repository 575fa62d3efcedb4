"""usdt: the eunomia:tick probe of a target built here with <sys/sdt.h>, found via $PATH."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import Ecli, require_root, run_ecli

pytestmark = pytest.mark.kernel

SOURCE = Path(__file__).with_name("usdt_target.c")
TARGET = "eunomia-usdt-target"  # the binary named in the program's section


@pytest.fixture
def target_on_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Builds the target into a temporary directory put first on $PATH (ecli inherits it)."""
    if shutil.which("gcc") is None:
        pytest.skip("gcc is needed to build the USDT target (apt install gcc)")
    binary = tmp_path / TARGET
    done = subprocess.run(["gcc", "-O2", "-Wall", "-o", str(binary), str(SOURCE)],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0 and "sys/sdt.h" in done.stderr:
        pytest.skip("<sys/sdt.h> is missing (apt install systemtap-sdt-dev)")
    assert done.returncode == 0, done.stderr
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ.get('PATH', '/usr/bin:/bin')}")
    yield binary


def json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_usdt_reports_each_probe_hit_with_its_arguments(ecli: type[Ecli], target_on_path: Path,
                                                        no_leaks: object) -> None:
    run = ecli(["run", "--json", "usdt"])
    run.wait_attached()
    target = subprocess.run([TARGET, "4", "20"], check=True)  # found on $PATH as ecli found it
    out, err = run.stop()
    assert run.proc.returncode == 0, err
    assert target.returncode == 0
    events = json_lines(out)
    assert [(e["seq"], e["message"]) for e in events] == [
        (seq, f"tick {seq} of 4") for seq in range(1, 5)]
    assert {e["comm"] for e in events} == {TARGET[:15]}  # TASK_COMM_LEN - 1
    assert len({e["pid"] for e in events}) == 1


def test_usdt_attaches_to_running_processes_and_filters_by_pid(
        ecli: type[Ecli], target_on_path: Path, no_leaks: object) -> None:
    # Started before ecli: a USDT probe is an uprobe on the file, so running processes
    # that mapped it are traced too.
    targets = [subprocess.Popen([str(target_on_path), count, "25"]) for count in ("200", "2000")]
    try:
        chosen, other = targets
        run = ecli(["run", "--json", "usdt", "--targ_pid", str(chosen.pid)])
        run.wait_attached()
        chosen.wait(timeout=30)
        assert other.poll() is None, "the other target stopped hitting its probe too early"
        out, err = run.stop()
    finally:
        for t in targets:
            t.kill()
            t.wait()
    assert run.proc.returncode == 0, err
    events = json_lines(out)
    assert events, err
    assert {e["pid"] for e in events} == {chosen.pid}
    seqs = [e["seq"] for e in events]
    assert seqs == list(range(seqs[0], 201)), seqs  # every hit from attach to the end


def test_usdt_without_the_target_fails_clearly(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    require_root()
    if shutil.which(TARGET, path="/usr/bin:/usr/sbin"):
        pytest.skip(f"{TARGET} is installed on this machine")
    monkeypatch.setenv("PATH", str(tmp_path))
    done = run_ecli(["run", "--duration", "1", "usdt"])
    assert done.returncode != 0
    assert "attach program handle_tick" in done.stderr and "ENOENT" in done.stderr
