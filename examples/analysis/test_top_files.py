"""top_files.py: the files this test opens come out on top, with pandas and without."""

from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path

import pytest
import top_files

from eunomia_bpf import Program

pytestmark = pytest.mark.kernel


def test_top_files_counts_a_process_opening_one_file_many_times(
        tmp_path: Path, no_leaks: object) -> None:
    if os.geteuid() != 0:
        pytest.skip("loading eBPF programs needs root (CAP_BPF + CAP_PERFMON)")
    path = tmp_path / f"top-{uuid.uuid4().hex[:8]}"
    path.write_text("x")
    script = f"for i in $(seq 40); do : < {path}; done"
    with Program.open("opensnoop") as prog:  # attached: the ring buffer keeps what follows
        subprocess.run(["/bin/sh", "-c", script], check=True)
        batches = list(prog.batches(duration=1))
    events = [b for b in batches if b.source == "events"]
    plain = top_files.top_plain(events, 1000)
    assert (40, 0, "sh", str(path)) in plain
    pytest.importorskip("pandas", reason="pandas is not installed (extra: data)")
    assert sorted(top_files.top_with_pandas(events, 1000)) == sorted(plain)


def test_top_files_prints_a_table(capsys: pytest.CaptureFixture[str], no_leaks: object) -> None:
    if os.geteuid() != 0:
        pytest.skip("loading eBPF programs needs root (CAP_BPF + CAP_PERFMON)")
    assert top_files.main(["--duration", "0.5", "--top", "3", "--plain"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].endswith("s (counted with plain Python)")
    assert lines[1].split() == ["OPENS", "FAILED", "COMM", "FILE"]
    assert len(lines) <= 5
