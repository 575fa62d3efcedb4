"""exitsnoop: process exits with parent, exit code, killing signal, lifetime and comm."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from typing import Any

import pytest

from tests.support import Ecli

pytestmark = pytest.mark.kernel


def json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def exits_and_kill() -> tuple[int, int, int]:
    """A /bin/sh exiting with 3, a /bin/true exiting with 0, a /bin/sleep killed by SIGKILL."""
    failing = subprocess.Popen(["/bin/sh", "-c", "exit 3"])
    failing.wait()
    ok = subprocess.Popen(["/bin/true"])
    ok.wait()
    killed = subprocess.Popen(["/bin/sleep", "30"])
    time.sleep(0.2)
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    return failing.pid, ok.pid, killed.pid


def test_exitsnoop_reports_exit_code_signal_and_lifetime(ecli: type[Ecli],
                                                         no_leaks: object) -> None:
    run = ecli(["run", "--json", "exitsnoop"])
    run.wait_attached()
    failing, ok, killed = exits_and_kill()
    time.sleep(0.5)
    out, err = run.stop()
    assert run.proc.returncode == 0, err
    by_pid = {e["pid"]: e for e in json_lines(out)}
    assert set(next(iter(by_pid.values()))) == {"pid", "ppid", "exit_code", "sig",
                                                "duration_ns", "comm"}
    assert by_pid[failing] | {"duration_ns": 0} == {
        "pid": failing, "ppid": os.getpid(), "exit_code": 3, "sig": 0, "duration_ns": 0,
        "comm": "sh"}
    assert (by_pid[ok]["exit_code"], by_pid[ok]["sig"], by_pid[ok]["comm"]) == (0, 0, "true")
    assert (by_pid[killed]["exit_code"], by_pid[killed]["sig"]) == (0, signal.SIGKILL)
    assert by_pid[killed]["comm"] == "sleep" and by_pid[killed]["ppid"] == os.getpid()
    # the sleep lived ~200 ms; /bin/true far less
    assert 150_000_000 < by_pid[killed]["duration_ns"] < 10_000_000_000
    assert 0 < by_pid[ok]["duration_ns"] < by_pid[killed]["duration_ns"]


def test_exitsnoop_failed_only_hides_clean_exits(ecli: type[Ecli], no_leaks: object) -> None:
    run = ecli(["run", "--json", "exitsnoop", "--trace_failed_only"])
    run.wait_attached()
    failing, ok, killed = exits_and_kill()
    time.sleep(0.5)
    out, err = run.stop()
    assert run.proc.returncode == 0, err
    events = json_lines(out)
    pids = {e["pid"] for e in events}
    assert {failing, killed} <= pids and ok not in pids
    assert all(e["exit_code"] or e["sig"] for e in events)


def test_exitsnoop_text_table_header(ecli: type[Ecli], no_leaks: object) -> None:
    run = ecli(["run", "exitsnoop"])
    run.wait_attached()
    _, ok, _ = exits_and_kill()
    time.sleep(0.3)
    out, err = run.stop()
    assert run.proc.returncode == 0, err
    lines = out.splitlines()
    assert lines[0].split() == ["TIME", "PID", "PPID", "EXIT_CODE", "SIG", "DURATION_NS",
                                "COMM"], lines[0]
    assert any(ln.split()[1] == str(ok) and ln.split()[-1] == "true" for ln in lines[1:])
