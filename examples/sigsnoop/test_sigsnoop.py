"""sigsnoop: signals sent with kill/tkill/tgkill — sender, target, signal, result, comm."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import threading
import time
from typing import Any

import pytest

from tests.support import Ecli

pytestmark = pytest.mark.kernel

NO_SUCH_PID = 4_000_000  # above pid_max's ceiling (4194304 is the limit; never reached here)


def json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def my_comm() -> str:
    with open("/proc/self/comm") as f:
        return f.read().strip()


def signal_a_child() -> int:
    """SIGTERM to a child we started, and a kill(2) that fails with ESRCH; the child's pid."""
    child = subprocess.Popen(["/bin/sleep", "30"])
    try:
        time.sleep(0.1)
        os.kill(child.pid, signal.SIGTERM)
    finally:
        child.wait()
    with pytest.raises(ProcessLookupError):
        os.kill(NO_SUCH_PID, 0)
    return child.pid


def test_sigsnoop_reports_a_signal_sent_to_a_child(ecli: type[Ecli], no_leaks: object) -> None:
    run = ecli(["run", "--json", "sigsnoop", "--filtered_pid", str(os.getpid())])
    run.wait_attached()
    child = signal_a_child()
    time.sleep(0.5)
    out, err = run.stop()
    assert run.proc.returncode == 0, err
    events = json_lines(out)
    me, comm = os.getpid(), my_comm()
    assert {"pid": me, "tpid": child, "sig": signal.SIGTERM, "ret": 0, "comm": comm} in events
    assert {"pid": me, "tpid": NO_SUCH_PID, "sig": 0, "ret": -errno.ESRCH,
            "comm": comm} in events
    assert all(e["pid"] == me for e in events)


def test_sigsnoop_tgkill_and_filters(ecli: type[Ecli], no_leaks: object) -> None:
    run = ecli(["run", "--json", "sigsnoop", "--filtered_pid", str(os.getpid()),
                "--target_signal", str(int(signal.SIGUSR1))])
    run.wait_attached()
    old = signal.signal(signal.SIGUSR1, lambda *_: None)
    try:
        signal.pthread_kill(threading.get_ident(), signal.SIGUSR1)  # tgkill(2)
        signal_a_child()  # SIGTERM and signal 0: filtered out
    finally:
        signal.signal(signal.SIGUSR1, old)
    time.sleep(0.5)
    out, err = run.stop()
    assert run.proc.returncode == 0, err
    events = json_lines(out)
    assert events == [{"pid": os.getpid(), "tpid": threading.get_native_id(),
                       "sig": signal.SIGUSR1, "ret": 0, "comm": my_comm()}]


def test_sigsnoop_failed_only(ecli: type[Ecli], no_leaks: object) -> None:
    run = ecli(["run", "--json", "sigsnoop", "--filtered_pid", str(os.getpid()), "--failed_only"])
    run.wait_attached()
    signal_a_child()
    time.sleep(0.5)
    out, err = run.stop()
    assert run.proc.returncode == 0, err
    events = json_lines(out)
    assert [(e["tpid"], e["ret"]) for e in events] == [(NO_SUCH_PID, -errno.ESRCH)]
