#!/usr/bin/env python3
"""Event throughput: how many small ring buffer events a consumer takes per second.

Run as root: ``python bench/throughput.py [--seconds 5] [--modes ...]``. It prints a
table and updates the "throughput" section of docs/benchmarks.md.

For each consumer mode, in the same run: ``loadgen SECONDS`` (a C getppid loop) runs on
CPU 1 and the bench_events program, restricted to loadgen's pid, emits one 24-byte
record per call into a 64 MiB ring buffer; the consumer runs on CPU 0 in its own
process. ``produced``/``dropped`` come from the program's .bss counters (every reserve,
and every reserve that failed because the ring was full), ``consumed`` from the
consumer itself. The rate is consumed events over the time from start until the
consumer has drained the ring (at least the loadgen time); CPU is the consumer's
user+system time over the same span.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import select
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (
    Loadgen,
    bss_counters,
    cpu_seconds,
    ecli_command,
    machine,
    package_path,
    table,
    update_doc,
    wait_idle,
)

MODES = {
    "callback": "baseline: libbpf ring_buffer__poll, one ctypes callback + struct.unpack "
                "per event",
    "callback-json": "baseline with output: the same callback, then one JSON line per event "
                     "(dict + orjson.dumps, written to /dev/null)",
    "api-batch": "Python API, batches: Program.batches() (mmap RingBufferReader), "
                 "numpy records",
    "api-columns": "Python API, batches decoded column-wise: Batch.columns()",
    "api-dicts": "Python API, batches decoded to dicts: Batch.to_dicts() (decode_batch)",
    "api-json": "Python API, JSON lines: Batch.columns() -> JsonLinesSink -> /dev/null",
    "ecli-json": "`ecli run --json bench_events --targ_pid PID`, stdout piped to `wc -l`",
}
ATTACHED = "attached"


# -- the consumer, in its own process ------------------------------------------------------

def consume(mode: str, targ_pid: int) -> None:
    from eunomia_bpf.package import read_package
    from eunomia_bpf.runner import Program

    package = read_package(package_path("bench_events").read_bytes())
    program = Program(package, arguments={"targ_pid": targ_pid})
    stop = False

    def on_signal(signum: int, frame: Any) -> None:
        nonlocal stop
        stop = True
        program.request_stop()

    signal.signal(signal.SIGINT, on_signal)
    consumed, last = 0, 0.0
    with program:
        print(ATTACHED, file=sys.stderr, flush=True)
        start = resource.getrusage(resource.RUSAGE_SELF)
        if mode.startswith("callback"):
            from _baseline import consume_with_callbacks

            emit = None
            if mode == "callback-json":
                import orjson

                out = open(os.devnull, "wb")  # noqa: SIM115
                names = ("ts", "pid", "cpu", "seq")

                def emit(fields: tuple[int, ...]) -> None:
                    out.write(orjson.dumps(dict(zip(names, fields))) + b"\n")

            assert program.running is not None
            consumed = consume_with_callbacks(program.running.maps["events"].fd,
                                              lambda: stop, lambda: None, emit)
            last = time.monotonic()
        else:
            sink = None
            if mode == "api-json":
                from eunomia_bpf.output import JsonLinesSink

                sink = JsonLinesSink(open(os.devnull, "wb"))  # noqa: SIM115
            for batch in program.batches():
                if mode == "api-columns":
                    batch.columns()
                elif mode == "api-dicts":
                    batch.to_dicts()
                elif sink is not None:
                    sink.records(batch.source, batch.names, batch.columns(), len(batch))
                consumed += len(batch)
                last = time.monotonic()
        end = resource.getrusage(resource.RUSAGE_SELF)
    cpu = end.ru_utime - start.ru_utime + end.ru_stime - start.ru_stime
    print(json.dumps({"consumed": consumed, "last": last, "cpu": cpu}))


# -- the driver ----------------------------------------------------------------------------

def _wait_for_line(proc: subprocess.Popen[bytes], word: str, timeout: float) -> None:
    assert proc.stderr is not None
    deadline = time.monotonic() + timeout
    seen = b""
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stderr], [], [], 0.1)
        if ready:
            chunk = os.read(proc.stderr.fileno(), 4096)
            if not chunk:
                break
            seen += chunk
            if word.encode() in seen:
                return
    proc.kill()
    raise RuntimeError(f"consumer did not attach: {seen.decode(errors='replace')}")


def trial(mode: str, seconds: float) -> dict[str, Any]:
    gen = Loadgen(seconds, cpu=1)
    wc = None
    if mode == "ecli-json":
        cmd = [*ecli_command(), "run", "--json", str(package_path("bench_events")),
               "--targ_pid", str(gen.pid)]
        word = "ecli: running"
    else:
        cmd = [sys.executable, __file__, "--consume", mode, "--targ-pid", str(gen.pid)]
        word = ATTACHED
    consumer = subprocess.Popen(["taskset", "-c", "0", *cmd], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)
    try:
        if mode == "ecli-json":
            wc = subprocess.Popen(["wc", "-l"], stdin=consumer.stdout, stdout=subprocess.PIPE)
            assert consumer.stdout is not None
            consumer.stdout.close()
        _wait_for_line(consumer, word, 60)
        cpu_start = cpu_seconds(consumer.pid)
        gen.go()
        calls = gen.wait()
        counters = bss_counters(consumer.pid)
        idle_at = wait_idle(consumer.pid)
        cpu_end = cpu_seconds(consumer.pid)
        consumer.send_signal(signal.SIGINT)
        out, err = consumer.communicate(timeout=60)
        if consumer.returncode not in (0, 130, -signal.SIGINT):
            raise RuntimeError(f"{mode} consumer failed: {err.decode(errors='replace')}")
        if wc is not None:
            consumed = int(wc.communicate()[0])
            last = idle_at
        else:
            result = json.loads(out.decode().strip().splitlines()[-1])
            consumed, last = result["consumed"], result["last"]
    finally:
        gen.kill()
        if consumer.poll() is None:
            consumer.kill()
    elapsed = max(seconds, last - gen.started)
    return {"mode": mode, "calls": calls, "produced": counters.get("produced", 0),
            "dropped": counters.get("dropped", 0), "consumed": consumed,
            "elapsed": elapsed, "rate": consumed / elapsed,
            "cpu": (cpu_end - cpu_start) / elapsed * 100}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--modes", nargs="+", choices=list(MODES), default=list(MODES))
    parser.add_argument("--no-doc", action="store_true", help="Do not touch docs/benchmarks.md")
    parser.add_argument("--consume", choices=list(MODES), help=argparse.SUPPRESS)
    parser.add_argument("--targ-pid", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.consume:
        consume(args.consume, args.targ_pid)
        return
    if os.geteuid() != 0:
        sys.exit("throughput.py: run as root (it loads eBPF programs)")
    package_path("bench_events")  # build once, outside the timed runs
    results = []
    for mode in args.modes:
        result = trial(mode, args.seconds)
        results.append(result)
        print(f"{mode:12} {result['rate'] / 1e6:6.2f} M events/s  produced {result['produced']}"
              f"  consumed {result['consumed']}  dropped {result['dropped']}"
              f"  cpu {result['cpu']:.0f}%", flush=True)
    for r in results:
        r["per_cpu"] = r["rate"] / max(r["cpu"] / 100, 1e-3)  # events per CPU-second
    by_mode = {r["mode"]: r for r in results}
    rows = []
    for r in results:
        # like against like: JSON output against the callback consumer that also writes
        # JSON, decoding only against the callback consumer that only unpacks
        base_mode = "callback-json" if r["mode"].endswith("json") else "callback"
        base = by_mode.get(base_mode)
        ratio = (f"{r['rate'] / base['rate']:.1f}x / {r['per_cpu'] / base['per_cpu']:.1f}x"
                 f" (vs `{base_mode}`)" if base else "-")
        unread = r["produced"] - r["consumed"]
        rows.append([f"`{r['mode']}`", f"{r['rate'] / 1e6:.2f} M", f"{r['produced']:,}",
                     f"{r['consumed']:,}", f"{r['dropped']:,}", f"{unread:,}",
                     f"{r['cpu']:.0f} %", f"{r['per_cpu'] / 1e6:.1f} M", ratio])
    headers = ["consumer", "events/s", "produced", "consumed", "dropped (ring full)",
               "unread", "consumer CPU", "events per CPU-s", "vs baseline: rate / per CPU-s"]
    print()
    print(table(headers, rows))
    if not args.no_doc:
        modes = "\n".join(f"- `{m}`: {MODES[m]}" for m in args.modes)
        update_doc("throughput", f"""## Event throughput (`bench/throughput.py`)

Method: `loadgen {args.seconds:g}` (C, `syscall(SYS_getppid)` in a loop) pinned to CPU 1; the
`bench_events` program (tracepoint `sys_enter_getppid`, `targ_pid` = loadgen) reserves and
submits one 24-byte record per call into a 64 MiB ring buffer, counting `produced` and
`dropped` (reserve failed: ring full) in `.bss`. The consumer runs alone in its own process on
CPU 0. Rate = consumed / time until the consumer drained the ring; CPU = the consumer's
user+system time over that span. All modes in one run:

{modes}

{machine()}

{table(headers, rows)}

`produced` counts records submitted to the ring, `dropped` the calls whose reserve failed
because the ring was full (lost), `unread` = produced - consumed (left in the ring when the
consumer stopped). No loss means dropped = unread = 0.
""")


if __name__ == "__main__":
    main()
