"""Helpers shared by the benchmark scripts: packages, the load generator, kernel counters,
CPU accounting and the results file (docs/benchmarks.md)."""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "benchmarks.md"
PACKAGES = REPO / "src" / "eunomia_bpf" / "packages"
EXAMPLES = REPO / "examples"
CACHE = Path(os.environ.get("EUNOMIA_BENCH_CACHE", "/tmp/eunomia-bench"))
CLK_TCK = os.sysconf("SC_CLK_TCK")


def package_path(name: str) -> Path:
    """The bundled package NAME, or one built from examples/NAME into the cache."""
    for candidate in (PACKAGES / f"{name}.json", PACKAGES / f"{name}.package.json"):
        if candidate.is_file():
            return candidate
    from eunomia_bpf.build import build_package

    source = EXAMPLES / name / f"{name}.bpf.c"
    built = CACHE / f"{name}.package.json"
    if not built.is_file() or built.stat().st_mtime < source.stat().st_mtime:
        CACHE.mkdir(parents=True, exist_ok=True)
        built.write_bytes(build_package(source))
    return built


def loadgen_path() -> Path:
    source = EXAMPLES / "bench_events" / "loadgen.c"
    binary = CACHE / "loadgen"
    if not binary.is_file() or binary.stat().st_mtime < source.stat().st_mtime:
        CACHE.mkdir(parents=True, exist_ok=True)
        subprocess.run(["cc", "-O2", "-o", str(binary), str(source)], check=True)
    return binary


class Loadgen:
    """``loadgen SECONDS`` pinned to a core, held until ``go()`` so that its pid can be
    given to the program (``targ_pid``) before the first event."""

    def __init__(self, seconds: float, cpu: int = 1) -> None:
        self.seconds = seconds
        self.proc = subprocess.Popen(
            ["taskset", "-c", str(cpu), "sh", "-c", 'read _ && exec "$0" "$1"',
             str(loadgen_path()), str(seconds)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.pid = self.proc.pid  # sh and then loadgen: exec keeps the pid
        self.started = 0.0

    def go(self) -> None:
        assert self.proc.stdin is not None
        self.started = time.monotonic()
        self.proc.stdin.write("\n")
        self.proc.stdin.close()

    def wait(self) -> int:
        """Wait for the end of the run; return the number of getppid calls made."""
        assert self.proc.stdout is not None
        out = self.proc.stdout.read()
        self.proc.wait()
        return int(out.strip() or 0)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def wait_idle(pid: int, *, quiet: float = 0.005, interval: float = 0.2,
              limit: float = 30.0) -> float:
    """Wait until a process stops using CPU (it has drained its input); return when."""
    deadline = time.monotonic() + limit
    last = cpu_seconds(pid)
    while time.monotonic() < deadline:
        time.sleep(interval)
        now = cpu_seconds(pid)
        if now - last < quiet:
            return time.monotonic() - interval
        last = now
    return time.monotonic()


def map_ids(pid: int) -> list[int]:
    ids = []
    for fd in os.listdir(f"/proc/{pid}/fdinfo"):
        try:
            text = Path(f"/proc/{pid}/fdinfo/{fd}").read_text()
        except OSError:
            continue
        match = re.search(r"^map_id:\s*(\d+)", text, re.MULTILINE)
        if match:
            ids.append(int(match.group(1)))
    return ids


def bss_counters(pid: int) -> dict[str, int]:
    """The .bss variables of the program process ``pid`` holds (via bpftool, with BTF)."""
    for map_id in map_ids(pid):
        info = json.loads(subprocess.run(["bpftool", "map", "show", "id", str(map_id), "-j"],
                                         capture_output=True, text=True, check=True).stdout)
        if not info.get("name", "").endswith(".bss"):
            continue
        dump = json.loads(subprocess.run(["bpftool", "map", "dump", "id", str(map_id), "-j"],
                                         capture_output=True, text=True, check=True).stdout)
        out: dict[str, int] = {}
        for var in dump[0]["formatted"]["value"][".bss"]:
            out.update({k: int(v) for k, v in var.items() if isinstance(v, int)})
        return out
    raise RuntimeError(f"no .bss map held by process {pid}")


def median_p90(values: list[float]) -> tuple[float, float]:
    ordered = sorted(values)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))]


def machine() -> str:
    cpu = "unknown cpu"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    return (f"Linux {platform.release()}, {os.cpu_count()} CPUs ({cpu}), "
            f"Python {platform.python_version()}, {time.strftime('%Y-%m-%d')}")


def table(headers: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def update_doc(section: str, body: str) -> None:
    """Replace the section between this script's markers in docs/benchmarks.md."""
    start, end = f"<!-- bench:{section} start -->", f"<!-- bench:{section} end -->"
    text = DOC.read_text() if DOC.is_file() else "# Benchmarks\n"
    block = f"{start}\n{body.strip()}\n{end}"
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.DOTALL)
    text = pattern.sub(lambda _: block, text) if pattern.search(text) else (
        text.rstrip("\n") + "\n\n" + block + "\n")
    DOC.write_text(text)


def ensure_bpffs() -> None:
    if not Path("/sys/fs/bpf").is_mount():
        subprocess.run(["mount", "-t", "bpf", "bpf", "/sys/fs/bpf"], check=True)


def ecli_command() -> list[str]:
    """The ``ecli`` console script of the interpreter running the bench (the venv's)."""
    script = Path(sys.executable).parent / "ecli"
    if script.exists():
        return [str(script)]
    found = shutil.which("ecli")
    return [found] if found else [sys.executable, "-m", "eunomia_bpf.cli.ecli"]
