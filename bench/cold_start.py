#!/usr/bin/env python3
"""Cold start: from process start to "attached", against bpftool loading the same object.

Run as root: ``python bench/cold_start.py [--runs 20] [--package opensnoop]``. It prints a
table and updates the "cold start" section of docs/benchmarks.md.

- ``ecli run --duration 0 PACKAGE``: spawn until ecli's "running ... attached" line on
  stderr (resolve, parse, BTF, load, attach, open readers); and until the process exits.
- the Python API: ``python -c`` that opens, runs and stops the package with ``Program``.
- ``bpftool prog loadall OBJ DIR``: the same ELF object (inflated from the package) loaded
  by a C tool and pinned, not attached; the pins are removed after each run (not timed).
- ``python -c pass``: the interpreter alone, for scale.
"""

from __future__ import annotations

import argparse
import os
import select
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (
    ecli_command,
    ensure_bpffs,
    machine,
    median_p90,
    package_path,
    table,
    update_doc,
)

# As a user runs it: Python may cache bytecode (some sandboxes set
# PYTHONDONTWRITEBYTECODE, which would make every run recompile the project's modules).
USER_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}

API_SNIPPET = """
import sys
from eunomia_bpf.runner import Program
program = Program.open(sys.argv[1])
program.run()
print("attached", file=sys.stderr, flush=True)
program.stop()
"""


def time_until_line(argv: list[str], word: str) -> tuple[float, float]:
    """Seconds from spawn until ``word`` shows on stderr, and until the process exits."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            env=USER_ENV)
    assert proc.stderr is not None
    seen, attached = b"", None
    while attached is None:
        ready, _, _ = select.select([proc.stderr], [], [], 30)
        if not ready:
            proc.kill()
            raise RuntimeError(f"{argv[0]}: no {word!r} within 30 s")
        chunk = os.read(proc.stderr.fileno(), 4096)
        if not chunk:
            break
        seen += chunk
        if word.encode() in seen:
            attached = time.perf_counter() - start
    seen += proc.stderr.read()
    proc.wait()
    ended = time.perf_counter() - start
    if proc.returncode != 0 or attached is None:
        raise RuntimeError(f"{' '.join(argv)} failed ({proc.returncode}): "
                           f"{seen.decode(errors='replace')}")
    return attached, ended


def time_bpftool_loadall(obj: Path, pin_dir: Path) -> float:
    start = time.perf_counter()
    subprocess.run(["bpftool", "prog", "loadall", str(obj), str(pin_dir)], check=True,
                   stdout=subprocess.DEVNULL)
    elapsed = time.perf_counter() - start
    shutil.rmtree(pin_dir)  # unpinning unloads the programs
    return elapsed


def time_process(argv: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, check=True)
    return time.perf_counter() - start


def ms(values: list[float]) -> tuple[str, str]:
    median, p90 = median_p90(values)
    return f"{median * 1000:.0f}", f"{p90 * 1000:.0f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--package", default="opensnoop")
    parser.add_argument("--no-doc", action="store_true", help="Do not touch docs/benchmarks.md")
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("cold_start.py: run as root (it loads eBPF programs)")
    ensure_bpffs()
    from eunomia_bpf.package import read_package

    package = package_path(args.package)
    ecli = ecli_command()
    work = Path(tempfile.mkdtemp(prefix="eunomia-cold-"))
    obj = work / f"{args.package}.bpf.o"
    obj.write_bytes(read_package(package.read_bytes()).object)
    pin_root = Path(tempfile.mkdtemp(prefix="eunomia-cold-", dir="/sys/fs/bpf"))
    try:
        ecli_attached, ecli_exit, api, bpftool, python = [], [], [], [], []
        # warm-up (fills the bytecode cache, the schema-validator cache), not counted
        time_until_line([*ecli, "run", "--duration", "0", str(package)], "ecli: running")
        time_until_line([sys.executable, "-c", API_SNIPPET, str(package)], "attached")
        for run in range(args.runs):  # interleaved, so that drift hits every row alike
            if ecli:
                attached, ended = time_until_line(
                    [*ecli, "run", "--duration", "0", str(package)], "ecli: running")
                ecli_attached.append(attached)
                ecli_exit.append(ended)
            api.append(time_until_line([sys.executable, "-c", API_SNIPPET, str(package)],
                                       "attached")[0])
            bpftool.append(time_bpftool_loadall(obj, pin_root / f"run{run}"))
            python.append(time_process([sys.executable, "-c", "pass"]))
    finally:
        shutil.rmtree(pin_root, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)

    base = median_p90(bpftool)[0]
    rows = []
    for name, values in (
            (f"`ecli run --duration 0 {args.package}`: start -> attached", ecli_attached),
            (f"`ecli run --duration 0 {args.package}`: start -> exit", ecli_exit),
            ("Python API `Program.open(...).run()`: start -> attached", api),
            ("`bpftool prog loadall` (C, load + pin, no attach)", bpftool),
            ("`python -c pass` (interpreter alone)", python)):
        if values:
            rows.append([name, *ms(values), f"{median_p90(values)[0] / base:.1f}x"])
    headers = ["what", "median ms", "p90 ms", "vs bpftool"]
    print(table(headers, rows))
    if not args.no_doc:
        update_doc("cold-start", f"""## Cold start (`bench/cold_start.py`)

Method: {args.runs} runs of each, interleaved; wall time from spawning the process. The
package is the bundled `{args.package}`; bpftool loads the ELF object inflated from that
same package and pins it into bpffs (the pins are removed after each run, untimed).
Python runs as a user's would, with its bytecode cache (PYTHONDONTWRITEBYTECODE unset;
the first, warming run of each is not counted).

{machine()}

{table(headers, rows)}
""")


if __name__ == "__main__":
    main()
