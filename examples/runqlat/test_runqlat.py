"""runqlat: run-queue latency histograms, sampled from the `hists` map every second."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support import run_ecli

pytestmark = pytest.mark.kernel

ALL_TASKS = 2**32 - 1  # the key of the one system-wide histogram (hkey = -1 as u32)
MAX_SLOTS = 26


@pytest.fixture
def busy_pids() -> Iterator[list[int]]:
    """More CPU-bound shells than CPUs, so they wait in the run queue for each other."""
    procs = [subprocess.Popen(["/bin/sh", "-c", "while :; do :; done"])
             for _ in range((os.cpu_count() or 1) + 2)]
    yield [p.pid for p in procs]
    for p in procs:
        p.kill()
        p.wait()


def sampled(*args: str) -> list[dict[str, Any]]:
    """`ecli run --json --duration 3 runqlat ARGS`: the histogram objects it printed."""
    if os.geteuid() != 0:
        pytest.skip("loading eBPF programs needs root (CAP_BPF + CAP_PERFMON)")
    done = run_ecli(["run", "--json", "--duration", "3", "runqlat", *args], timeout=60)
    assert done.returncode == 0, done.stderr
    records = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
    assert records, f"no histogram was printed; stderr: {done.stderr!r}"
    for r in records:
        assert r["map"] == "hists", r
        assert isinstance(r["value"], dict) and set(r["value"]) == {"slots", "comm"}, r
        assert len(r["value"]["slots"]) == MAX_SLOTS, r
    return records


def slot_weight(slots: list[int], *, above: int) -> int:
    return sum(count for i, count in enumerate(slots) if i > above)


def test_runqlat_histogram_of_all_tasks(busy_pids: list[int], no_leaks: object) -> None:
    records = sampled()
    assert {r["key"] for r in records} == {ALL_TASKS}
    # one reading a second: three in three seconds (the last one may race the end)
    assert 2 <= len(records) <= 4, records
    last = records[-1]["value"]["slots"]
    assert sum(last) > 100
    # CPU hogs queue behind each other for whole time slices: waits of a millisecond
    # and more (slot 10 holds 1024-2047 us)
    assert slot_weight(last, above=9) > 0, last
    # the map is not cleared between readings: counts only grow
    totals = [sum(r["value"]["slots"]) for r in records]
    assert totals == sorted(totals)


def test_runqlat_per_process_and_in_milliseconds(busy_pids: list[int], no_leaks: object) -> None:
    records = sampled("--targ_per_process", "--targ_ms")
    last = {}
    for r in records:
        last[r["key"]] = r["value"]
    hogs = [pid for pid in busy_pids if pid in last]
    assert hogs, f"no histogram for the busy shells {busy_pids}; keys: {sorted(last)}"
    for pid in hogs:
        assert last[pid]["comm"] == "sh"
        slots = last[pid]["slots"]
        assert sum(slots) > 0
        # in milliseconds the hogs' waits of a few time slices land low; counted in
        # microseconds they would fill slots 10 and up (1024 us and more)
        assert slot_weight(slots, above=9) == 0, slots
