"""``ecli run --metrics``: real programs in the kernel, /metrics fetched over real HTTP."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support import Ecli, run_ecli

pytestmark = pytest.mark.kernel

Samples = dict[str, list[tuple[dict[str, str], float]]]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def scrape(url: str) -> Samples:
    response = httpx.get(url, timeout=5)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    out: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for s in family.samples:
            out.setdefault(s.name, []).append((s.labels, s.value))
    return out


def scrape_until(url: str, ready: Callable[[Samples], bool], timeout: float = 15) -> Samples:
    deadline = time.monotonic() + timeout
    while True:
        samples = scrape(url)
        if ready(samples) or time.monotonic() > deadline:
            return samples
        time.sleep(0.3)


def metrics_url(run: Ecli) -> str:
    m = re.search(r"ecli: serving metrics at (http://\S+/metrics)", run.stderr_head)
    assert m, run.stderr_head
    return m.group(1)


def my_open_count(samples: Samples, metric: str = "eunomia_events_total",
                  **labels: str) -> float:
    comm = Path("/proc/self/comm").read_text().strip()
    return sum(v for lb, v in samples.get(metric, [])
               if lb.get("comm") == comm and all(lb.get(k) == x for k, x in labels.items()))


def open_files(directory: Path, n: int) -> Path:
    path = directory / f"m-{uuid.uuid4().hex[:8]}"
    path.write_text("x")
    for _ in range(n):
        with path.open():
            pass
    return path


def test_opensnoop_counts_events_labelled_with_the_test_process_comm(
        ecli: type[Ecli], no_leaks: object, tmp_path: Path) -> None:
    port = free_port()
    run = ecli(["run", "--metrics", f"127.0.0.1:{port}", "--label", "comm", "opensnoop"])
    run.wait_attached()
    url = f"http://127.0.0.1:{port}/metrics"
    assert metrics_url(run) == url
    before = my_open_count(scrape(url))
    path = open_files(tmp_path, 50)
    after = scrape_until(url, lambda s: my_open_count(s) >= before + 50)
    assert my_open_count(after) >= before + 50, after.get("eunomia_events_total")
    mine = [lb for lb, _ in after["eunomia_events_total"]
            if lb["comm"] == Path("/proc/self/comm").read_text().strip()]
    assert mine == [{"program": "opensnoop", "map": "events", "comm": mine[0]["comm"]}]
    out, err = run.stop()
    assert run.proc.returncode == 0, err
    assert str(path) in out  # the normal output goes on beside the metrics
    with pytest.raises(httpx.TransportError):  # and the server is gone with the program
        httpx.get(url, timeout=2)


@pytest.fixture
def cpu_load() -> Iterator[None]:
    """More CPU-bound shells than CPUs, so that tasks wait in the run queue."""
    procs = [subprocess.Popen(["/bin/sh", "-c", "while :; do :; done"])
             for _ in range((os.cpu_count() or 1) + 2)]
    yield
    for p in procs:
        p.kill()
        p.wait()


def test_runqlat_log2_map_is_served_as_a_histogram(ecli: type[Ecli], no_leaks: object,
                                                   cpu_load: None) -> None:
    run = ecli(["run", "--metrics", "127.0.0.1:0", "runqlat"])
    run.wait_attached()
    url = metrics_url(run)
    assert not url.endswith(":0/metrics")  # port 0: the port picked is the one printed
    count = "eunomia_map_hists_usecs_count"
    samples = scrape_until(url, lambda s: any(v > 100 for _, v in s.get(count, [])))
    out, err = run.stop()
    assert run.proc.returncode == 0, err
    assert "usecs" in out and "distribution" in out  # the text histogram still prints
    [(labels, total)] = samples[count]
    assert labels == {"program": "runqlat", "map": "hists", "key": str(2**32 - 1)}
    assert total > 100
    buckets = [(lb["le"], v) for lb, v in samples["eunomia_map_hists_usecs_bucket"]]
    assert [float(le) for le, _ in buckets[:-1]] == [2.0 ** (i + 1) - 1 for i in range(26)]
    assert buckets[-1] == ("+Inf", total)
    counts = [v for _, v in buckets]
    assert counts == sorted(counts)  # cumulative
    # CPU hogs wait for each other's time slices: some waits of a millisecond or more
    assert total - dict(buckets)["1023.0"] > 0, buckets
    assert samples["eunomia_map_hists_usecs_sum"][0][1] > 0


EXPORTER_CONFIG = """\
programs:
- name: opensnoop
  metrics:
    counters:
    - name: eunomia_file_open_counter
      description: files opened
      labels:
      - name: comm
      - name: filename
        from: fname
  compiled_ebpf_filename: ignored/package.json
"""


def test_exporter_config_file_defines_the_counters(ecli: type[Ecli], no_leaks: object,
                                                   tmp_path: Path) -> None:
    config = tmp_path / "exporter.yaml"
    config.write_text(EXPORTER_CONFIG)
    run = ecli(["run", "--metrics", "127.0.0.1:0", "--metrics-config", str(config),
                "opensnoop"])
    run.wait_attached()
    url = metrics_url(run)
    path = open_files(tmp_path, 5)
    name = "eunomia_file_open_counter_total"
    samples = scrape_until(url, lambda s: my_open_count(s, name, filename=str(path)) >= 6)
    run.stop()
    # five reads and the write that created it, each one openat(2)
    assert my_open_count(samples, name, filename=str(path)) == 6
    assert "eunomia_events_total" not in samples  # the config replaces the defaults


def test_metrics_option_mistakes_are_one_line_errors(no_leaks: object,
                                                     tmp_path: Path) -> None:
    done = run_ecli(["run", "--label", "comm", "opensnoop"])
    assert done.returncode == 2 and "--label only makes sense with --metrics" in done.stderr
    done = run_ecli(["run", "--metrics", "127.0.0.1:0", "--label", "cmd", "opensnoop"])
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "--label cmd: no event field of that name" in done.stderr
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = run_ecli(["run", "--metrics", f"127.0.0.1:{port}", "opensnoop"])
    assert done.returncode == 1, done.stderr
    assert done.stderr.strip() == (f"ecli: error: serve metrics on 127.0.0.1:{port}: "
                                   f"Address already in use")
    done = run_ecli(["run", "--metrics", "nope", "opensnoop"])
    assert done.returncode == 1 and "'nope' is not a port number" in done.stderr
