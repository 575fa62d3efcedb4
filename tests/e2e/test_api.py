"""The Python API as a programmer uses it, against the real kernel."""

from __future__ import annotations

import os
import threading
import time

import pytest

from eunomia_bpf import ArgumentError, Program, open_program, read_package
from eunomia_bpf.resolve import bundled_dir
from tests.support import require_root, vector_path

pytestmark = pytest.mark.kernel


@pytest.fixture(autouse=True)
def _root() -> None:
    require_root()


def test_context_manager_batches_of_our_own_events(no_leaks: object) -> None:
    with Program.open("bench_events", arguments={"targ_pid": os.getpid()}) as prog:
        for _ in range(1000):
            os.getppid()
        seen = []
        for batch in prog.batches(duration=1.0):
            assert batch.source == "events"
            seen.extend(batch.records["seq"].tolist())
            assert set(batch.records["pid"].tolist()) == {os.getpid()}
            if len(seen) >= 1000:
                break
    assert len(seen) == 1000
    assert seen == sorted(seen) and len(set(seen)) == 1000


def test_events_are_dicts_with_the_struct_fields(no_leaks: object) -> None:
    data = (bundled_dir() / "bench_events.package.json").read_bytes()
    prog = Program.from_bytes(data, arguments={"targ_pid": os.getpid()})
    prog.run()
    try:
        os.getppid()
        events = []
        for event in prog.events(duration=2.0):
            events.append(event)
            break
    finally:
        prog.stop()
    assert events and events[0]["pid"] == os.getpid()
    assert {"ts", "pid", "cpu", "seq"} <= set(events[0])


def test_process_message_with_receiver_and_stop_from_another_thread(no_leaks: object) -> None:
    prog = open_program(str(vector_path("bootstrap")))
    received: list[dict[str, object]] = []
    prog.run()

    def trigger_then_stop() -> None:
        time.sleep(0.3)
        os.spawnv(os.P_WAIT, "/bin/true", ["true"])
        time.sleep(0.5)
        prog.request_stop()

    t = threading.Thread(target=trigger_then_stop)
    t.start()
    started = time.monotonic()
    prog.process_message(received.append)
    t.join()
    prog.stop()
    prog.stop()  # idempotent
    assert time.monotonic() - started < 5
    assert any(e["comm"] == "true" for e in received)


def test_set_arguments_from_strings_and_bad_values() -> None:
    prog = Program(read_package(vector_path("bootstrap").read_bytes()))
    prog.set_arguments(["--min_duration_ns", "5"])
    with pytest.raises(ArgumentError, match="min_duration_ns"):
        prog.set_arguments(["--min_duration_ns", "x"])


def test_poll_before_run_is_a_clear_error() -> None:
    prog = Program(read_package(vector_path("bootstrap").read_bytes()))
    from eunomia_bpf import EunomiaError

    with pytest.raises(EunomiaError, match="not running"):
        prog.poll(0)
