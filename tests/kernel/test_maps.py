"""The Python map API against a real program: ``program.maps["name"]`` reads and writes
what the BPF side sees, per-CPU values, batch lookup, pinning, pause/resume.

``progs/maps_filter.bpf.c`` fires on getppid(2) and reports (ring buffer, counters) only
the processes whose pid user space wrote into its ``filter`` map.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from eunomia_bpf import ArgumentError, DecodeError, EunomiaError, Map, Program, open_pinned

pytestmark = pytest.mark.kernel

PROGS = Path(__file__).resolve().parent / "progs"
PID = os.getpid()
BPFFS = Path("/sys/fs/bpf")


@pytest.fixture(scope="module")
def filter_package(bpf_builder: Any) -> bytes:
    """The compiled package (bpf_builder: root, clang, bpftool, tracefs and bpffs)."""
    from eunomia_bpf.build import build_package

    return build_package(PROGS / "maps_filter.bpf.c")


@pytest.fixture
def prog(filter_package: bytes, no_leaks: object) -> Iterator[Program]:
    with Program.from_bytes(filter_package) as running:
        yield running


def getppid_times(n: int) -> None:
    for _ in range(n):
        os.getppid()


def our_events(prog: Program, expected: int, timeout: float = 2.0) -> list[dict[str, Any]]:
    """Events of this process: wait for ``expected`` of them, then a little for extras."""
    seen: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while len(seen) < expected and time.monotonic() < deadline:
        for batch in prog.poll(100):
            seen.extend(e for e in batch.to_dicts() if e["pid"] == PID)
    for batch in prog.poll(200):
        seen.extend(e for e in batch.to_dicts() if e["pid"] == PID)
    return seen


def comm() -> str:
    return Path("/proc/self/comm").read_text().strip()


def test_filter_map_written_from_python_decides_what_the_program_reports(
        prog: Program) -> None:
    getppid_times(3)
    assert our_events(prog, 0) == []
    assert PID not in prog.maps["counts"]

    prog.maps["filter"][PID] = 1
    getppid_times(4)
    events = our_events(prog, 4)
    assert len(events) == 4
    assert prog.maps["counts"][PID] == 4
    assert sum(prog.maps["percpu_hits"][0]) == 4
    assert prog.maps["by_comm"][{"pid": PID, "comm": comm()}]["calls"] == 4

    del prog.maps["filter"][PID]
    getppid_times(2)
    assert our_events(prog, 0) == []
    assert prog.maps["counts"][PID] == 4


def test_a_map_is_a_mutable_mapping(prog: Program) -> None:
    counts = prog.maps["counts"]
    assert isinstance(counts, Map) and len(counts) == 0 and list(counts) == []
    for key in range(10):
        counts[key] = key * 100
    assert len(counts) == 10
    assert sorted(counts) == list(range(10))
    assert dict(counts.items()) == {k: k * 100 for k in range(10)}
    assert sorted(counts.values()) == [k * 100 for k in range(10)]
    assert counts.get(3) == 300 and counts.get(42) is None and counts.get(42, -1) == -1
    assert 3 in counts and 42 not in counts
    counts[3] += 1
    assert counts[3] == 301
    del counts[3]
    with pytest.raises(KeyError):
        counts[3]
    with pytest.raises(KeyError):
        del counts[3]
    counts.clear()
    assert len(counts) == 0

    by_comm = prog.maps["by_comm"]
    by_comm[{"pid": 1, "comm": "init"}] = {"calls": 5, "last_cpu": 1}
    assert list(by_comm.items()) == [({"pid": 1, "comm": "init"},
                                      {"calls": 5, "last_cpu": 1, "flags": 0})]


def test_arrays_hold_every_index_and_refuse_deletes(prog: Program) -> None:
    hits = prog.maps["percpu_hits"]
    assert len(hits) == 4 and list(hits) == [0, 1, 2, 3]
    hits[2] = 7
    with pytest.raises(ArgumentError, match="delete from map percpu_hits: elements of an "
                       "array map cannot be deleted"):
        del hits[2]
    with pytest.raises(KeyError):
        hits[4]  # past max_entries
    hits.clear()
    assert len(hits) == 4 and all(sum(v) == 0 for v in hits.values())


def test_per_cpu_values_are_lists_one_per_possible_cpu(prog: Program) -> None:
    from eunomia_bpf._libbpf import num_possible_cpus

    ncpus = num_possible_cpus()
    hits = prog.maps["percpu_hits"]
    hits[1] = 5  # one value: every CPU
    assert hits[1] == [5] * ncpus
    hits[1] = list(range(10, 10 + ncpus))
    assert hits[1] == list(range(10, 10 + ncpus))
    with pytest.raises(ArgumentError, match=f"{ncpus + 1} per-CPU values for {ncpus} "
                       "possible CPUs"):
        hits[1] = [1] * (ncpus + 1)

    stats = prog.maps["percpu_stats"]  # LRU per-CPU hash of structs
    stats[9] = {"calls": 2}
    assert stats[9] == [{"calls": 2, "last_cpu": 0, "flags": 0}] * ncpus

    prog.maps["filter"][PID] = 1
    getppid_times(6)
    assert sum(hits[0]) == 6  # the program's increments, wherever it ran


def test_lookup_batch_equals_iteration(prog: Program, monkeypatch: pytest.MonkeyPatch) -> None:
    counts, hits, by_comm = prog.maps["counts"], prog.maps["percpu_hits"], prog.maps["by_comm"]
    for key in range(40):
        counts[key] = key ** 3
        by_comm[{"pid": key, "comm": f"task{key}"}] = {"calls": key}
    hits[3] = 11

    def by_key(pairs: list[tuple[Any, Any]]) -> list[tuple[Any, Any]]:
        return sorted(pairs, key=repr)

    batched = {name: by_key(prog.maps[name].lookup_batch())
               for name in ("counts", "percpu_hits", "by_comm")}
    assert sorted(batched["counts"]) == [(k, k ** 3) for k in range(40)]
    for name, pairs in batched.items():
        assert pairs == by_key(list(prog.maps[name].items())), name

    # this kernel has batch lookups for these maps; the fallback is iteration
    import eunomia_bpf._libbpf as libbpf

    assert libbpf.map_lookup_batch(counts.fd, 4, 8, counts.max_entries) is not None
    monkeypatch.setattr(libbpf, "map_lookup_batch", lambda *args: None)
    for name, pairs in batched.items():
        assert by_key(prog.maps[name].lookup_batch()) == pairs, name
    assert len(batched["by_comm"]) == 40 and len(batched["percpu_hits"]) == 4


def test_clear_errors_for_wrong_keys_and_values(prog: Program) -> None:
    counts = prog.maps["counts"]
    with pytest.raises(DecodeError, match=r"update map counts: bad key: .*'pid' is not an "
                       r"integer"):
        counts["pid"] = 1
    with pytest.raises(DecodeError, match="look up map counts: bad key: .* out of range"):
        counts[-1]
    with pytest.raises(DecodeError, match="update map counts: bad value"):
        counts[1] = {"calls": 1}
    with pytest.raises(DecodeError, match="update map by_comm: bad key: .*no member 'tid'"):
        prog.maps["by_comm"][{"tid": 1}] = {"calls": 1}
    with pytest.raises(DecodeError, match="bad key: .* holds a string of at most 15 bytes"):
        prog.maps["by_comm"][{"pid": 1, "comm": "x" * 16}] = {}

    untyped = prog.maps["untyped"]  # no BTF types: bytes only
    with pytest.raises(ArgumentError, match="update map untyped: the key must be bytes, "
                       "not int"):
        untyped[1] = bytes(8)
    with pytest.raises(ArgumentError, match="the key is 2 bytes, the map's keys are 4"):
        untyped[b"\x01\x00"] = bytes(8)
    with pytest.raises(ArgumentError, match="the value is 4 bytes, the map's values are 8"):
        untyped[b"\x01\x00\x00\x00"] = bytes(4)
    untyped[b"\x01\x00\x00\x00"] = b"abcdefgh"
    assert untyped[b"\x01\x00\x00\x00"] == b"abcdefgh"

    # the raw view of a typed map: the same elements as bytes
    counts[7] = 0x0102
    assert counts.raw[(7).to_bytes(4, "little")] == (0x0102).to_bytes(8, "little")
    counts.raw[(8).to_bytes(4, "little")] = (5).to_bytes(8, "little")
    assert counts[8] == 5

    with pytest.raises(KeyError):
        prog.maps["no_such_map"]


def test_maps_refuse_use_after_the_program_stopped(filter_package: bytes,
                                                   no_leaks: object) -> None:
    prog = Program.from_bytes(filter_package).run()
    counts = prog.maps["counts"]
    counts[1] = 1
    prog.stop()
    assert counts.closed
    with pytest.raises(EunomiaError, match="look up map counts: the program that owns map "
                       "counts has stopped"):
        counts[1]
    with pytest.raises(EunomiaError, match="not running"):
        prog.maps["counts"]


@pytest.fixture
def pin_path() -> Iterator[Path]:
    path = BPFFS / f"eunomia-test-{uuid.uuid4().hex[:12]}"
    yield path
    if path.exists():  # the test failed before it unpinned
        path.unlink()


def test_a_map_pinned_by_one_run_is_read_from_its_pin_after_the_run(
        filter_package: bytes, pin_path: Path, no_leaks: object) -> None:
    with Program.from_bytes(filter_package) as prog:
        prog.maps["filter"][PID] = 1
        getppid_times(3)
        by_comm = prog.maps["by_comm"]
        by_comm.pin(pin_path)
        assert by_comm.pinned == str(pin_path)
        key_layout, value_layout = by_comm.key_layout, by_comm.value_layout
    assert pin_path.exists()  # the program is gone, the map is not

    key = {"pid": PID, "comm": comm()}
    with open_pinned(pin_path) as typed:  # typed by the BTF the kernel keeps for the map
        assert typed.name == "by_comm"
        assert typed[key]["calls"] == 3
        typed[key] = {"calls": 10}
    with open_pinned(pin_path, key_type=key_layout, value_type=value_layout) as given:
        assert given[key] == {"calls": 10, "last_cpu": 0, "flags": 0}
        assert key_layout is not None
        assert given.raw[key_layout.encode(key)][:8] == (10).to_bytes(8, "little")
        given.unpin()
        assert given.pinned is None
        assert given[key]["calls"] == 10  # the fd still holds the map
    assert not pin_path.exists()
    assert given.closed
    with pytest.raises(EunomiaError, match="the map is closed"):
        given[key]


def test_open_pinned_errors(pin_path: Path, filter_package: bytes, no_leaks: object) -> None:
    from eunomia_bpf.errors import LibbpfError

    with pytest.raises(LibbpfError, match=f"open pinned map {pin_path}: No such file"):
        open_pinned(pin_path)
    with pytest.raises(LibbpfError, match="is not on a bpffs mount"):
        open_pinned("/etc/hostname")
    with Program.from_bytes(filter_package) as prog:
        counts = prog.maps["counts"]
        with pytest.raises(LibbpfError, match="pin map counts at /tmp/.*is not on a bpffs"):
            counts.pin(f"/tmp/eunomia-not-bpffs-{uuid.uuid4().hex[:8]}")
        with pytest.raises(ArgumentError, match="unpin map counts: it is not pinned"):
            counts.unpin()
        counts.pin(pin_path)
        with pytest.raises(LibbpfError, match="File exists"):
            counts.pin(pin_path)
        with pytest.raises(DecodeError, match="use key type __u64: it is 8 bytes, the map's "
                           "keys are 4"):
            open_pinned(pin_path, key_type=counts.value_layout)
        counts.unpin()
    assert not pin_path.exists()


def test_pause_detaches_and_resume_attaches_again_keeping_the_maps(prog: Program) -> None:
    prog.maps["filter"][PID] = 1
    links = len(prog.running.links) if prog.running else 0
    getppid_times(2)
    assert len(our_events(prog, 2)) == 2

    prog.pause()
    assert prog.paused and prog.running is not None and not prog.running.links
    prog.pause()  # idempotent
    getppid_times(5)
    assert our_events(prog, 0, timeout=0.3) == []
    assert prog.maps["counts"][PID] == 2
    prog.maps["counts"][PID] = 100  # maps stay writable while paused

    prog.resume()
    assert not prog.paused and len(prog.running.links) == links
    getppid_times(3)
    assert len(our_events(prog, 3)) == 3
    assert prog.maps["counts"][PID] == 103
    assert prog.maps["filter"][PID] == 1


def test_pause_needs_a_running_program(filter_package: bytes) -> None:
    prog = Program.from_bytes(filter_package)
    with pytest.raises(EunomiaError, match="pause maps_filter_bpf: the program is not running"):
        prog.pause()
    with pytest.raises(EunomiaError, match="resume maps_filter_bpf: the program is not running"):
        prog.resume()
