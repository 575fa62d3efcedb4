"""minimal: `ecli run minimal --targ_pid PID` shows the trace-pipe lines of that process."""

from __future__ import annotations

import re
import subprocess
import sys
import time

import pytest

from tests.support import Ecli, run_ecli

pytestmark = pytest.mark.kernel

# Writes a line to /dev/null every 50 ms until killed.
WRITER = "import os, time\nwhile True:\n    os.write(1, b'x' * 7)\n    time.sleep(0.05)\n"


def test_minimal_prints_writes_of_the_chosen_pid(ecli: type[Ecli], no_leaks: object) -> None:
    writers = [subprocess.Popen([sys.executable, "-c", WRITER], stdout=subprocess.DEVNULL)
               for _ in range(2)]
    try:
        target, other = writers
        run = ecli(["run", "minimal", "--targ_pid", str(target.pid)])
        run.wait_attached()
        time.sleep(1.5)
        out, err = run.stop()
    finally:
        for w in writers:
            w.kill()
            w.wait()
    assert run.proc.returncode == 0, err
    lines = [ln for ln in out.splitlines() if ln.strip()]
    assert lines, f"no trace-pipe lines: stderr={err!r}"
    for line in lines:
        m = re.search(r"bpf_trace_printk: write\(fd=(\d+), count=(\d+)\) from PID (\d+)$", line)
        assert m is not None, line
        assert m.groups() == ("1", "7", str(target.pid)), line
    assert not any(f"PID {other.pid}" in ln for ln in lines)


def test_minimal_help_lists_the_pid_option() -> None:
    done = run_ecli(["run", "minimal", "--help"])
    assert done.returncode == 0, done.stderr
    assert "--targ_pid" in done.stdout and "Process ID to trace" in done.stdout
