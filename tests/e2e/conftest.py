"""End-to-end helpers: run the real ``ecli`` as a user would, against the real kernel."""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"
ECLI = [sys.executable, "-m", "eunomia_bpf.cli.ecli"]


def require_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("loading eBPF programs needs root (CAP_BPF + CAP_PERFMON)")


class Ecli:
    """A running ``ecli run`` process whose stderr we watched until it attached."""

    def __init__(self, args: Sequence[str], *, stdin: bytes | None = None) -> None:
        self.proc = subprocess.Popen(
            [*ECLI, *args], stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        if stdin is not None:
            assert self.proc.stdin is not None
            self.proc.stdin.write(stdin)
            self.proc.stdin.close()
            self.proc.stdin = None
        self.stderr_head = ""

    def wait_attached(self, timeout: float = 20.0) -> None:
        """Block until ecli says it is running (or fail with what it printed)."""
        assert self.proc.stderr is not None
        sel = selectors.DefaultSelector()
        sel.register(self.proc.stderr, selectors.EVENT_READ)
        deadline = time.monotonic() + timeout
        while "Ctrl-C to stop" not in self.stderr_head:
            left = deadline - time.monotonic()
            if left <= 0 or self.proc.poll() is not None and not sel.select(0):
                _, err = self.finish()
                pytest.fail(f"ecli did not attach: rc={self.proc.returncode} "
                            f"stderr={self.stderr_head + err!r}")
            if sel.select(min(left, 0.5)):
                chunk = os.read(self.proc.stderr.fileno(), 4096).decode(errors="replace")
                if not chunk and self.proc.poll() is not None:
                    continue
                self.stderr_head += chunk
        sel.close()

    def stop(self, sig: int = signal.SIGINT, timeout: float = 20.0) -> tuple[str, str]:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.finish(timeout)

    def finish(self, timeout: float = 30.0) -> tuple[str, str]:
        try:
            out, err = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, err = self.proc.communicate()
            pytest.fail(f"ecli did not stop within {timeout} s")
        return out.decode(errors="replace"), self.stderr_head + err.decode(errors="replace")


@pytest.fixture
def ecli() -> Iterator[type[Ecli]]:
    require_root()
    started: list[Ecli] = []

    class Tracked(Ecli):
        def __init__(self, args: Sequence[str], **kw: bytes | None) -> None:
            super().__init__(args, **kw)  # type: ignore[arg-type]
            started.append(self)

    yield Tracked
    for e in started:  # only the processes this test started, by their own handle
        if e.proc.poll() is None:
            e.proc.kill()
            e.proc.wait()


def run_ecli(args: Sequence[str], *, stdin: bytes | None = None,
             timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*ECLI, *args], check=False, input=stdin.decode() if stdin else None,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="session")
def fixture_packages(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Packages compiled from tests/e2e/fixtures/*.bpf.c with our own builder."""
    from eunomia_bpf.build import ToolNotFoundError, build_package

    out = tmp_path_factory.mktemp("fixture-packages")
    built: dict[str, Path] = {}
    for source in sorted(FIXTURES.glob("*.bpf.c")):
        name = source.name.removesuffix(".bpf.c")
        try:
            data = build_package(source)
        except ToolNotFoundError as exc:
            pytest.skip(f"cannot compile test programs: {exc}")
        path = out / f"{name}.package.json"
        path.write_bytes(data)
        built[name] = path
    return built
