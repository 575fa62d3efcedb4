"""iter: a BPF task iterator; each read lists the tasks (tgid, tid, ppid, state, comm)."""

from __future__ import annotations

import json
import os
import subprocess
import threading

import pytest

from eunomia_bpf.attach import IterLink
from eunomia_bpf.runner import Program
from tests.support import require_root, run_ecli

pytestmark = pytest.mark.kernel

HEADER = ["TGID", "TID", "PPID", "STATE", "COMM"]


def ecli_tasks(*args: str) -> list[list[str]]:
    """`ecli run iter ARGS`: it runs the iterator once and exits; the rows, split."""
    require_root()
    done = run_ecli(["run", "iter", *args], timeout=30)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].split() == HEADER, lines[:2]
    return [ln.split(maxsplit=4) for ln in lines[1:]]


def test_iter_lists_a_child_process_and_our_threads(no_leaks: object) -> None:
    child = subprocess.Popen(["/bin/sleep", "30"])
    stop = threading.Event()
    worker = threading.Thread(target=stop.wait, name="iter-test")
    worker.start()
    try:
        rows = ecli_tasks()
        leaders = ecli_tasks("--processes_only")
    finally:
        stop.set()
        worker.join()
        child.kill()
        child.wait()
    me = str(os.getpid())
    by_tid = {row[1]: row for row in rows}
    assert by_tid[str(child.pid)][0] == str(child.pid)
    assert by_tid[str(child.pid)][2] == me
    assert by_tid[str(child.pid)][4] == "sleep"
    assert by_tid[str(worker.native_id)][0] == me  # a thread: its tgid is ours
    assert all(row[3].isdigit() for row in rows)
    # processes_only: one row per process, so our extra thread is gone
    assert all(row[0] == row[1] for row in leaders)
    assert str(worker.native_id) not in {row[1] for row in leaders}
    assert {me, str(child.pid)} <= {row[1] for row in leaders}


def test_iter_json_gives_one_object_per_line(no_leaks: object) -> None:
    require_root()
    done = run_ecli(["run", "--json", "iter"], timeout=30)
    assert done.returncode == 0, done.stderr
    records = [json.loads(line) for line in done.stdout.splitlines()]
    assert records[0] == {"trace": "TGID     TID      PPID     STATE COMM"}
    assert any(r["trace"].split()[1] == str(os.getpid()) for r in records[1:])


def test_iter_each_read_walks_again(no_leaks: object) -> None:
    # The Python API keeps the iterator attached: every read() is a fresh walk.
    require_root()
    with Program.open("iter") as prog:
        assert prog.running is not None
        link = prog.running.links[0]
        assert isinstance(link, IterLink)
        before = link.read().decode()
        child = subprocess.Popen(["/bin/sleep", "30"])
        try:
            after = link.read().decode()
        finally:
            child.kill()
            child.wait()
    assert f"\n{child.pid} " not in before
    assert f"\n{child.pid} " in after
