"""``ecli run`` as a user runs it: real packages, real kernel, real events."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from tests.support import Ecli, run_ecli, vector_path

pytestmark = pytest.mark.kernel


def spawn_short_processes(n: int = 5) -> list[int]:
    """Start and reap ``n`` short-lived /bin/sleep processes; return their pids."""
    pids = []
    for _ in range(n):
        p = subprocess.Popen(["/bin/sleep", "0.05"])
        pids.append(p.pid)
        p.wait()
    return pids


def json_lines(text: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_bootstrap_vector_prints_exec_and_exit_events(ecli: type[Ecli], no_leaks: object) -> None:
    run = ecli(["run", str(vector_path("bootstrap"))])
    run.wait_attached()
    pids = spawn_short_processes()
    time.sleep(0.5)
    out, err = run.stop()
    assert run.proc.returncode == 0, err
    lines = out.splitlines()
    assert lines[0].split()[:2] == ["TIME", "PID"], lines[0]
    assert {"COMM", "FILENAME", "EXIT_EVENT"} <= set(lines[0].split())
    for pid in pids:
        mine = [ln for ln in lines if re.search(rf"\s{pid}\s", ln)]
        assert any("/bin/sleep" in ln and "false" in ln for ln in mine), (pid, mine)
        assert any(" sleep " in ln and "true" in ln for ln in mine), (pid, mine)


def test_bootstrap_vector_json(ecli: type[Ecli], no_leaks: object) -> None:
    run = ecli(["run", "--json", str(vector_path("bootstrap"))])
    run.wait_attached()
    pids = spawn_short_processes(3)
    time.sleep(0.5)
    out, err = run.stop()
    assert run.proc.returncode == 0, err
    events = json_lines(out)
    assert set(events[0]) == {"pid", "ppid", "exit_code", "duration_ns", "comm",
                              "filename", "exit_event", "et"}
    for pid in pids:
        execs = [e for e in events if e["pid"] == pid and not e["exit_event"]]
        exits = [e for e in events if e["pid"] == pid and e["exit_event"]]
        assert execs and execs[0]["filename"] == "/bin/sleep" and execs[0]["comm"] == "sleep"
        assert execs[0]["ppid"] == os.getpid()
        assert exits and exits[0]["comm"] == "sleep" and exits[0]["exit_code"] == 0


def test_bootstrap_min_duration_changes_what_is_reported(ecli: type[Ecli],
                                                         no_leaks: object) -> None:
    # bootstrap reports only exits, and only of processes older than min_duration_ns,
    # once that is set: our ~50 ms sleeps pass a 1 ms minimum and fail a 10 s one.
    run = ecli(["run", "--json", str(vector_path("bootstrap")), "--min_duration_ns", "1000000"])
    run.wait_attached()
    pids = spawn_short_processes(2)
    time.sleep(0.5)
    out, _ = run.stop()
    events = [e for e in json_lines(out) if e["pid"] in pids]
    assert {e["pid"] for e in events} == set(pids)
    assert all(e["exit_event"] and e["duration_ns"] >= 1_000_000 for e in events)

    run = ecli(["run", "--json", str(vector_path("bootstrap")),
                "--min_duration_ns", str(10**10)])
    run.wait_attached()
    pids = spawn_short_processes(2)
    time.sleep(0.5)
    out, _ = run.stop()
    assert not [e for e in json_lines(out) if e["pid"] in pids]


def test_simple_vector_shows_printk_of_one_pid(ecli: type[Ecli], no_leaks: object) -> None:
    writer = subprocess.Popen(
        ["/bin/sh", "-c", "while :; do echo tick >/dev/null; sleep 0.05; done"])
    try:
        run = ecli(["run", str(vector_path("simple")), "--pid_filter", str(writer.pid)])
        run.wait_attached()
        time.sleep(1.5)
        out, err = run.stop()
    finally:
        writer.kill()
        writer.wait()
    assert run.proc.returncode == 0, err
    lines = [ln for ln in out.splitlines() if "bpf_trace_printk" in ln]
    assert len(lines) >= 5, out[-2000:]
    pids = {int(p) for ln in lines for p in re.findall(r"PID (\d+)", ln)}
    assert pids == {writer.pid}, lines[:5]


def test_opensnoop_json_shows_a_file_we_open(ecli: type[Ecli], no_leaks: object,
                                            tmp_path: Path) -> None:
    run = ecli(["run", "--json", "opensnoop"])
    run.wait_attached()
    target = tmp_path / f"opened-{uuid.uuid4().hex}"
    target.write_text("x")
    for _ in range(3):
        target.open().close()
    time.sleep(0.5)
    out, err = run.stop()
    assert run.proc.returncode == 0, err
    mine = [e for e in json_lines(out) if str(target) in str(e.get("fname"))]
    assert mine, out[-3000:]
    assert all(e["pid"] == os.getpid() for e in mine)


def test_sigterm_and_duration_leave_nothing_behind(ecli: type[Ecli], no_leaks: object) -> None:
    run = ecli(["run", "execsnoop"])
    run.wait_attached()
    _, err = run.stop(signal.SIGTERM)
    assert run.proc.returncode == 0, err
    started = time.monotonic()
    done = run_ecli(["run", "--duration", "1", "--json", "bootstrap"])
    assert done.returncode == 0, done.stderr
    assert 0.9 < time.monotonic() - started < 15


def test_package_from_stdin(ecli: type[Ecli], no_leaks: object) -> None:
    run = ecli(["run", "--json", "-"], stdin=vector_path("bootstrap").read_bytes())
    run.wait_attached()
    pids = spawn_short_processes(1)
    time.sleep(0.5)
    out, _ = run.stop()
    assert any(e["pid"] == pids[0] for e in json_lines(out))


def test_several_export_maps_at_once(ecli: type[Ecli], no_leaks: object,
                                     fixture_packages: dict[str, Path]) -> None:
    run = ecli(["run", "--json", str(fixture_packages["two_rings"]),
                "--targ_pid", str(os.getpid())])
    run.wait_attached()
    for _ in range(50):
        os.getppid()
    time.sleep(0.5)
    out, err = run.stop()
    events = json_lines(out)
    first = [e["seq"] for e in events if e["map"] == "first"]
    second = [e["seq"] for e in events if e["map"] == "second"]
    assert first == second == list(range(50)), err
    assert {e["ring"] for e in events if e["map"] == "second"} == {2}


def test_package_help_shows_doc_and_options() -> None:
    done = run_ecli(["run", str(vector_path("bootstrap")), "--help"])
    assert done.returncode == 0
    assert "--min_duration_ns" in done.stdout and "unsigned long long" in done.stdout


@pytest.mark.parametrize("name, message", [
    ("refused_kprobe", r"kprobe"),
    ("refused_fentry", r"fentry"),
    ("unknown_section", r"nosuchkind"),
    ("refused_verifier", r"verifier"),
])
def test_refused_programs_fail_with_one_line(name: str, message: str,
                                             fixture_packages: dict[str, Path],
                                             no_leaks: object) -> None:
    done = run_ecli(["run", "--duration", "1", str(fixture_packages[name])])
    assert done.returncode == 1, done
    first = done.stderr.splitlines()[0]
    assert first.startswith("ecli: error: ") and re.search(message, first), done.stderr
    assert "Traceback" not in done.stderr


def test_verifier_log_in_full_with_verbose(fixture_packages: dict[str, Path],
                                           no_leaks: object) -> None:
    short = run_ecli(["run", str(fixture_packages["refused_verifier"])])
    full = run_ecli(["run", "--verbose", str(fixture_packages["refused_verifier"])])
    assert short.returncode == full.returncode == 1
    assert "--verbose" in short.stderr and len(short.stderr.splitlines()) <= 3
    assert "invalid mem access" in full.stderr and "processed" in full.stderr
    assert "Traceback" not in full.stderr


def test_kernel_feature_messages_name_the_feature(fixture_packages: dict[str, Path],
                                                 no_leaks: object) -> None:
    kprobe = run_ecli(["run", str(fixture_packages["refused_kprobe"])])
    fentry = run_ecli(["run", str(fixture_packages["refused_fentry"])])
    assert "kprobe" in kprobe.stderr.lower() and "not" in kprobe.stderr.lower()
    assert "fentry" in fentry.stderr.lower() and "not" in fentry.stderr.lower()


def test_runqlat_vector_prints_changing_histograms(ecli: type[Ecli], no_leaks: object) -> None:
    run = ecli(["run", "--json", str(vector_path("runqlat"))])
    run.wait_attached()
    # CPU load: more runnable tasks than CPUs makes run-queue latency, so buckets move
    burners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(3)]
    try:
        time.sleep(3.5)
    finally:
        for b in burners:
            b.kill()
            b.wait()
    out, err = run.stop()
    assert run.proc.returncode == 0, err
    samples = [e for e in json_lines(out) if e["map"] == "hists"]
    assert len(samples) >= 3, out[-2000:]
    totals = [sum(s["value"]["slots"]) for s in samples]
    assert all(len(s["value"]["slots"]) == 26 for s in samples)
    assert totals[-1] > totals[0] > 0  # the map accumulates: more wake-ups every second


def test_runqlat_vector_text_histogram(ecli: type[Ecli], no_leaks: object) -> None:
    done = run_ecli(["run", "--duration", "1.5", str(vector_path("runqlat"))])
    assert done.returncode == 0, done.stderr
    assert "distribution" in done.stdout
    assert re.search(r"^\s+0 -> 1\s+: \d+\s+\|", done.stdout, re.MULTILINE), done.stdout[:1000]


def test_custom_btf_file_is_used(ecli: type[Ecli], no_leaks: object, tmp_path: Path) -> None:
    btf = tmp_path / "vmlinux.btf"
    btf.write_bytes(Path("/sys/kernel/btf/vmlinux").read_bytes())
    run = ecli(["run", "--json", "--btf", str(btf), "bootstrap"])
    run.wait_attached()
    pids = spawn_short_processes(1)
    time.sleep(0.5)
    out, _ = run.stop()
    assert any(e["pid"] == pids[0] for e in json_lines(out))
    missing = run_ecli(["run", "--btf", str(tmp_path / "nope.btf"), "bootstrap"])
    assert missing.returncode == 1 and "does not exist" in missing.stderr


def test_kernel_without_btf_is_one_clear_error(monkeypatch: pytest.MonkeyPatch,
                                               no_leaks: object, tmp_path: Path) -> None:
    from eunomia_bpf import NotSupportedError, Program, loader

    monkeypatch.setattr(loader, "KERNEL_BTF", str(tmp_path / "no-btf-here"))
    with pytest.raises(NotSupportedError, match="exposes no BTF.*CONFIG_DEBUG_INFO_BTF"):
        Program.open("bootstrap").run()


def test_perf_event_array_events(ecli: type[Ecli], no_leaks: object,
                                 fixture_packages: dict[str, Path]) -> None:
    run = ecli(["run", "--json", str(fixture_packages["events_perf"]),
                "--targ_pid", str(os.getpid())])
    run.wait_attached()
    for _ in range(200):
        os.getppid()
    time.sleep(0.5)
    out, err = run.stop()
    events = json_lines(out)
    assert sorted(e["seq"] for e in events) == list(range(200)), err
    assert {e["pid"] for e in events} == {os.getpid()}
    assert {e["cpu"] for e in events} <= set(range(os.cpu_count() or 1))


def test_iterator_output_is_printed_and_run_ends(fixture_packages: dict[str, Path],
                                                 no_leaks: object) -> None:
    started = time.monotonic()
    done = run_ecli(["run", "--duration", "20", str(fixture_packages["iter_tasks"])])
    assert done.returncode == 0, done.stderr
    assert time.monotonic() - started < 10  # ends once the iterator has run
    rows = [ln.split(maxsplit=1) for ln in done.stdout.splitlines()]
    assert [str(os.getpid()), "python"] in [r[:1] + [r[1][:6]] for r in rows if len(r) == 2]
    assert len(rows) > 10 and all(r[0].isdigit() for r in rows)
    assert "iter/list_tasks" in done.stderr
