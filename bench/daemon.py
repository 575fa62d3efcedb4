#!/usr/bin/env python3
"""eunomiad: time from an API request to an attached program, and events per second
streamed to a client.

Run as root: ``python bench/daemon.py [--runs 20] [--seconds 5]``. It starts its own
eunomiad (loopback TCP and a unix socket, no auth, a temporary state directory), prints
a table and updates the "daemon" section of docs/benchmarks.md.

* **Start**: ``POST /v1/programs`` with the bundled opensnoop until the daemon answers
  ``running`` (it answers once the worker reports the program attached), over the unix
  socket and over TCP, by package bytes and by name; then ``DELETE`` until stopped.
* **Stream**: bench_events, restricted to ``loadgen``'s pid (a C getppid loop on CPU 1),
  runs in the daemon; one client process on CPU 0 reads its SSE stream
  (``RemoteClient.events``) and counts. ``produced``/``dropped`` are the program's .bss
  counters (ring buffer reserves, and reserves that failed because the ring was full),
  ``read by the worker`` is the daemon's event count, ``streamed`` what the client got;
  the rate is streamed events over the time from the load's start to the last event.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (
    Loadgen,
    bss_counters,
    cpu_seconds,
    ensure_bpffs,
    machine,
    median_p90,
    package_path,
    table,
    update_doc,
)

READY = "ready"


class Daemon:
    """An eunomiad of our own, with a throwaway state directory and no auth (loopback)."""

    def __init__(self) -> None:
        self.home = Path(tempfile.mkdtemp(prefix="eunomiad-bench-"))
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        self.tcp = f"http://127.0.0.1:{port}"
        self.unix = f"unix://{self.home}/eunomiad.sock"
        config = self.home / "eunomiad.toml"
        config.write_text(f'listen = ["tcp:127.0.0.1:{port}", "unix:{self.home}/eunomiad.sock"]\n'
                          f'state_dir = "{self.home}/state"\nauth = false\n')
        self.log = (self.home / "eunomiad.log").open("wb")
        self.proc = subprocess.Popen([sys.executable, "-m", "eunomia_bpf.cli.eunomiad",
                                      "serve", "--config", str(config)],
                                     stdout=self.log, stderr=self.log)
        from eunomia_bpf.remote import RemoteClient, RemoteError

        deadline = time.monotonic() + 30
        with RemoteClient(self.tcp) as client:
            while True:
                try:
                    client.health()
                    return
                except RemoteError:
                    if self.proc.poll() is not None or time.monotonic() > deadline:
                        self.close()
                        raise SystemExit("eunomiad did not start: "
                                         + (self.home / "eunomiad.log").read_text()[-2000:])
                    time.sleep(0.1)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=30)
        self.log.close()


# -- start: request to attached ------------------------------------------------------------

def start_times(daemon: Daemon, runs: int) -> list[list[str]]:
    from eunomia_bpf.remote import RemoteClient

    data = package_path("opensnoop").read_bytes()
    rows = []
    for label, url, package in [("bytes, unix socket", daemon.unix, data),
                                ("bytes, TCP", daemon.tcp, data),
                                ("name, unix socket", daemon.unix, "opensnoop")]:
        attach, stop = [], []
        with RemoteClient(url) as client:
            client.stop(client.start(package)["id"])  # warm: package stored, caches filled
            for _ in range(runs):
                t0 = time.perf_counter()
                program = client.start(package)
                while program["status"] == "starting":  # the daemon answers once attached
                    program = client.get(program["id"])
                t1 = time.perf_counter()
                assert program["status"] == "running", program
                client.stop(program["id"])
                t2 = time.perf_counter()
                attach.append((t1 - t0) * 1000)
                stop.append((t2 - t1) * 1000)
        (a_med, a_p90), (s_med, s_p90) = median_p90(attach), median_p90(stop)
        print(f"start opensnoop ({label}): {a_med:.1f} ms median, {a_p90:.1f} ms p90; "
              f"stop {s_med:.1f} ms median")
        rows.append([label, f"{a_med:.0f} ms", f"{a_p90:.0f} ms", f"{s_med:.0f} ms",
                     f"{s_p90:.0f} ms"])
    return rows


# -- stream: events per second to one client -----------------------------------------------

def consume(url: str, program_id: str) -> None:
    """The client process: read the stream until the program is gone, then report."""
    from eunomia_bpf.remote import RemoteClient

    received = gaps = 0
    last_seq = 0
    first = last = 0.0
    print(READY, flush=True)
    start_cpu = cpu_seconds(os.getpid())
    with RemoteClient(url) as client:
        for event in client.events(program_id):
            now = time.monotonic()
            first = first or now
            last = now
            received += 1
            seq = event["seq"]
            if seq != last_seq + 1:
                gaps += seq - last_seq - 1
            last_seq = seq
    print(json.dumps({"received": received, "gaps": gaps, "first": first, "last": last,
                      "cpu": cpu_seconds(os.getpid()) - start_cpu}), flush=True)


def wait_settled(client: Any, program_id: str, limit: float = 60.0) -> dict[str, Any]:
    """The program once its event count stops growing (the worker has read the ring)."""
    deadline = time.monotonic() + limit
    program = client.get(program_id)
    while time.monotonic() < deadline:
        time.sleep(0.5)
        now = client.get(program_id)
        if now["events"] == program["events"]:
            return dict(now)
        program = now
    return dict(program)


def stream_rate(daemon: Daemon, seconds: float, url: str) -> dict[str, Any]:
    from eunomia_bpf.remote import RemoteClient

    loadgen = Loadgen(seconds, cpu=1)
    with RemoteClient(url) as client:
        program = client.start(package_path("bench_events").read_bytes(),
                               ["--targ_pid", str(loadgen.pid)])
        consumer = subprocess.Popen(
            ["taskset", "-c", "0", sys.executable, __file__, "--consume", url, program["id"]],
            stdout=subprocess.PIPE, text=True)
        try:
            assert consumer.stdout is not None
            assert consumer.stdout.readline().strip() == READY
            time.sleep(0.3)  # connected; events buffered before it are replayed anyway
            worker_cpu0 = cpu_seconds(program["pid"])
            daemon_cpu0 = cpu_seconds(daemon.proc.pid)
            loadgen.go()
            calls = loadgen.wait()
            settled = wait_settled(client, program["id"])
            counters = bss_counters(program["pid"])
            worker_cpu = cpu_seconds(program["pid"]) - worker_cpu0
            daemon_cpu = cpu_seconds(daemon.proc.pid) - daemon_cpu0
        finally:
            client.stop(program["id"])
            loadgen.kill()
        out, _ = consumer.communicate(timeout=120)
    got = json.loads(out.strip().splitlines()[-1])
    span = max(got["last"] - loadgen.started, seconds) if got["received"] else seconds
    result = {"url": "unix socket" if url.startswith("unix:") else "TCP", "calls": calls,
              "produced": counters.get("produced", 0), "dropped": counters.get("dropped", 0),
              "worker_read": settled["events"], "lost": settled["lost"],
              "streamed": got["received"], "gaps": got["gaps"],
              "rate": got["received"] / span, "span": span,
              "cpu": {"worker": worker_cpu, "daemon": daemon_cpu, "client": got["cpu"]}}
    print(f"stream over {result['url']}: {result['rate'] / 1e3:.0f} k events/s to the client; "
          f"produced {result['produced']:,}, dropped in the kernel {result['dropped']:,}, "
          f"read by the worker {result['worker_read']:,}, streamed {result['streamed']:,}, "
          f"missed by the client {result['gaps']:,}; CPU s: {result['cpu']}")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--no-doc", action="store_true", help="Do not update the doc.")
    parser.add_argument("--consume", nargs=2, metavar=("URL", "ID"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.consume:
        consume(*args.consume)
        return
    if os.geteuid() != 0:
        raise SystemExit("bench/daemon.py loads eBPF programs: run it as root")
    ensure_bpffs()
    daemon = Daemon()
    try:
        starts = start_times(daemon, args.runs)
        streams = [stream_rate(daemon, args.seconds, url) for url in (daemon.unix, daemon.tcp)]
    finally:
        daemon.close()
    if args.no_doc:
        return
    stream_rows = [[r["url"], f"{r['rate'] / 1e3:.0f} k", f"{r['produced']:,}",
                    f"{r['dropped']:,}", f"{r['worker_read']:,}", f"{r['streamed']:,}",
                    f"{r['gaps']:,}",
                    "{worker:.1f} / {daemon:.1f} / {client:.1f}".format(**r["cpu"])]
                   for r in streams]
    update_doc("daemon", f"""\
## eunomiad: request to attached, events streamed (`bench/daemon.py`)

{machine()}. The script starts a daemon of its own (no auth, loopback TCP and a unix
socket); {args.runs} runs per line, the client is the bench process.

`POST /v1/programs` with the bundled opensnoop until the answer says `running` (the
daemon answers once the worker has attached the program), then `DELETE` until the
answer says `stopped` (the worker has exited: links, programs and maps are gone):

{table(["package, transport", "start median", "start p90", "stop median", "stop p90"],
       starts)}

bench_events in the daemon, restricted to a C `getppid` loop running {args.seconds:g} s on
CPU 1; one client process on CPU 0 reads the program's SSE stream
(`RemoteClient.events`). *dropped* = ring buffer reserves that failed (ring full), *read*
= events the worker read and passed to the daemon, *missed* = events the daemon's
per-program buffer (`limits.event_buffer`) had let go before the client read them (seq
gaps); the rate is streamed events over the time from the load's start to the last event
received; CPU seconds over the same span.

{table(["transport", "streamed/s", "produced", "dropped", "read", "streamed", "missed",
        "CPU s worker / daemon / client"], stream_rows)}
""")


if __name__ == "__main__":
    main()
