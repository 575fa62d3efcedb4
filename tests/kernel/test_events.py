"""Event readers against real programs: ring buffer (batches, wrap-around, odd records),
perf buffer, trace pipe, and the poller over them.

Every program here fires on getppid(2) of this test process only (``targ_pid``), so the
test knows exactly which events must arrive.
"""

from __future__ import annotations

import mmap
import os
import struct
import subprocess
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from eunomia_bpf.errors import EunomiaError, NotSupportedError
from eunomia_bpf.events import PerfBufferReader, Poller, RingBufferReader, TracePipeReader

pytestmark = pytest.mark.kernel

REPO = Path(__file__).resolve().parents[2]
PROGS = Path(__file__).resolve().parent / "progs"
BENCH_EVENTS = REPO / "examples" / "bench_events" / "bench_events.bpf.c"

BENCH_EVENT = np.dtype([("ts", "<u8"), ("pid", "<u4"), ("cpu", "<u4"), ("seq", "<u8")])
RING_EVENT = np.dtype([("seq", "<u8"), ("pid", "<u4"), ("kind", "<u4"), ("extra", "<u8")])
PERF_EVENT = np.dtype([("seq", "<u8"), ("pid", "<u4"), ("cpu", "<u4")])

_packages: dict[Path, bytes] = {}


def _package(source: Path) -> bytes:
    if source not in _packages:
        from eunomia_bpf.build import build_package

        _packages[source] = build_package(source)
    return _packages[source]


@pytest.fixture
def load(load_checked: Any) -> Any:
    """Loads a program for this pid; after the test, checks nothing of it is left."""
    from eunomia_bpf.package import read_package
    from eunomia_bpf.spec import ObjectSpec

    def _load(source: Path) -> Any:
        spec = ObjectSpec.from_package(read_package(_package(source)))
        return load_checked(spec, {"targ_pid": struct.pack("<i", os.getpid())})

    return _load


def _bss_counter(program: Any, name: str) -> int:
    """A live __u64 from .bss, through the map's mmap (libbpf's copy is stale)."""
    var = next(v for v in program.spec.variables if v.name == name)
    handle = next(h for key, h in program.maps.items() if key.endswith(var.section))
    with mmap.mmap(handle.fd, mmap.PAGESIZE, mmap.MAP_SHARED, mmap.PROT_READ) as area:
        view = np.frombuffer(area, np.uint64, count=1, offset=var.offset)
        value = int(view[0])
        del view
    return value


def _ring(program: Any, dtype: np.dtype[Any], **options: Any) -> RingBufferReader:
    handle = program.maps["events"]
    return RingBufferReader(handle.fd, handle.max_entries, dtype, **options)


def _read_until_empty(reader: RingBufferReader) -> list[np.ndarray[Any, Any]]:
    batches = []
    while len(batch := reader.read()):
        batches.append(batch)
    return batches


def test_ring_buffer_returns_every_event_once_in_order(load: Any) -> None:
    program = load(BENCH_EVENTS)
    n = 10_000
    with _ring(program, BENCH_EVENT) as reader:
        assert reader.read().size == 0
        for _ in range(n):
            os.getppid()
        batches = _read_until_empty(reader)
        assert reader.read().size == 0, "a drained ring must not return records again"
    assert [len(b) for b in batches] == [4096, 4096, n - 8192]  # max_batch by default
    records = np.concatenate(batches)
    assert records.dtype == BENCH_EVENT
    assert len(records) == n
    assert (records["pid"] == os.getpid()).all()
    assert (np.diff(records["seq"].astype(np.int64)) == 1).all()
    assert (np.diff(records["ts"].astype(np.int64)) >= 0).all()
    assert _bss_counter(program, "produced") == n
    assert _bss_counter(program, "dropped") == 0


def test_ring_buffer_wakes_the_poller(load: Any) -> None:
    program = load(BENCH_EVENTS)
    with _ring(program, BENCH_EVENT) as reader, Poller([reader]) as poller:
        assert poller.poll(0) == []
        start = time.monotonic()
        os.getppid()
        ready = poller.poll(5000)
        assert time.monotonic() - start < 2, "epoll on the ring buffer fd did not fire"
    assert len(ready) == 1
    source, batch = ready[0]
    assert source is reader and len(batch) == 1 and batch["pid"][0] == os.getpid()


def _expected_ring_records(count: int) -> list[tuple[int, int, int, int]]:
    """What events_ring.bpf.c emits for seq 0..count-1 (see the program)."""
    pid = os.getpid()
    out = []
    for seq in range(count):
        if seq % 7 == 3:
            continue  # discarded
        if seq % 5 == 1:
            out.append((seq, pid, 0, 0))  # 12-byte record, zero-padded
        elif seq % 5 == 2:
            out.append((seq, pid, 2, seq * 3))  # 40-byte record, cut to 24
        else:
            out.append((seq, pid, 1, seq * 3))
    return out


def test_ring_buffer_wraps_with_odd_and_discarded_records(load: Any) -> None:
    program = load(PROGS / "events_ring.bpf.c")
    n = 20_000
    batches = []
    with _ring(program, RING_EVENT, max_batch=50) as reader:
        assert program.maps["events"].max_entries == 16384
        for i in range(n):
            os.getppid()
            if i % 97 == 0:  # ~3 KiB a read: the 16 KiB ring wraps dozens of times
                batches.append(reader.read())  # half of them: a batch ends anywhere
                batches.append(reader.read())
        batches.extend(_read_until_empty(reader))
        assert reader.pending() == 0
    assert max(map(len, batches)) == 50
    records = np.concatenate(batches)
    assert _bss_counter(program, "dropped") == 0
    assert [tuple(int(v) for v in r) for r in records.tolist()] == _expected_ring_records(n)


def test_ring_buffer_full_drops_new_records_but_keeps_order(load: Any) -> None:
    program = load(PROGS / "events_ring.bpf.c")
    n = 3000  # far more than a 16 KiB ring holds unread
    with _ring(program, RING_EVENT) as reader:
        for _ in range(n):
            os.getppid()
        first = np.concatenate(_read_until_empty(reader))
        os.getppid()
        second = reader.read()
    dropped = _bss_counter(program, "dropped")
    discards = sum(seq % 7 == 3 for seq in range(n))
    assert dropped > 0
    # Once full, the ring takes a record only where it fits: later, shorter ones may
    # still get in. Whatever arrived is intact and in order.
    assert n - discards <= len(first) + dropped <= n
    by_seq = {r[0]: r for r in _expected_ring_records(n)}
    got = [tuple(int(v) for v in r) for r in first.tolist()]
    assert got == [by_seq[r[0]] for r in got]
    assert (np.diff(first["seq"].astype(np.int64)) > 0).all()
    assert second["seq"].tolist() == [n]  # room again once the reader caught up


def test_ring_buffer_reader_close_is_idempotent(load: Any) -> None:
    program = load(BENCH_EVENTS)
    reader = _ring(program, BENCH_EVENT)
    assert reader.fileno() == program.maps["events"].fd
    assert reader.lost == 0
    reader.close()
    reader.close()
    with pytest.raises(EunomiaError, match="closed"):
        reader.read()


def test_ring_buffer_rejects_a_size_that_is_not_a_power_of_two() -> None:
    with pytest.raises(EunomiaError, match="power of 2"):
        RingBufferReader(0, 3000, BENCH_EVENT)


def test_perf_buffer_collects_events_from_every_cpu(load: Any) -> None:
    program = load(PROGS / "events_perf.bpf.c")
    n = 2000
    got: list[np.ndarray[Any, Any]] = []
    with PerfBufferReader(program.maps["events"].fd, PERF_EVENT, 64) as reader, \
            Poller([reader]) as poller:
        assert poller.poll(0) == []
        for i in range(n):
            os.getppid()
            if i % 500 == 0:
                got.extend(batch for _, batch in poller.poll(0))
        deadline = time.monotonic() + 5
        while sum(map(len, got)) < n and time.monotonic() < deadline:
            got.extend(batch for _, batch in poller.poll(100))
        assert reader.lost == 0
        reader.close()
        reader.close()
    records = np.concatenate(got)
    assert records.dtype == PERF_EVENT
    assert len(records) == n
    assert sorted(records["seq"].tolist()) == list(range(n))
    assert (records["pid"] == os.getpid()).all()


@pytest.fixture
def tracefs() -> None:
    if not os.path.exists("/sys/kernel/tracing/trace_pipe"):
        subprocess.run(["mount", "-t", "tracefs", "tracefs", "/sys/kernel/tracing"],
                       check=True)


def test_trace_pipe_returns_complete_printk_lines(load: Any, tracefs: None) -> None:
    n = 50
    marker = f"eunomia-test pid={os.getpid()} "
    with TracePipeReader() as reader, Poller([reader]) as poller:
        reader.read()  # drop what was there before
        load(PROGS / "events_printk.bpf.c")
        for _ in range(n):
            os.getppid()
        lines: list[str] = []
        deadline = time.monotonic() + 5
        while sum(marker in ln for ln in lines) < n and time.monotonic() < deadline:
            for source, batch in poller.poll(200):
                assert source is reader
                lines.extend(batch)
    ours = [ln for ln in lines if marker in ln]
    assert [int(ln.rsplit("seq=", 1)[1]) for ln in ours] == list(range(n))
    assert all(ln.endswith(f"seq={i}") for i, ln in enumerate(ours)), "a line was cut"


def test_trace_pipe_missing_says_how_to_mount(tmp_path: Path) -> None:
    with pytest.raises(NotSupportedError, match="mount -t tracefs"):
        TracePipeReader(str(tmp_path / "trace_pipe"))
