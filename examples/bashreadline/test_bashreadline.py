"""bashreadline: lines typed into an interactive bash (on a pseudo-terminal) come out."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator

import pytest

from tests.support import Ecli

pytestmark = pytest.mark.kernel

BASH = "/bin/bash"


def bash_has_readline() -> bool:
    done = subprocess.run(["nm", "-D", BASH], capture_output=True, text=True, check=False)
    return any(line.split()[-2:] == ["T", "readline"] for line in done.stdout.splitlines())


class Terminal:
    """An interactive bash on a pseudo-terminal that we type into."""

    def __init__(self) -> None:
        self.master, slave = pty.openpty()
        try:
            self.proc = subprocess.Popen(
                [BASH, "--norc", "--noprofile", "-i"], stdin=slave, stdout=slave,
                stderr=slave, start_new_session=True,
                env={"PATH": "/usr/bin:/bin", "TERM": "dumb", "PS1": "$ "})
        finally:
            os.close(slave)
        self.seen = b""

    def read_until(self, marker: bytes, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        os.set_blocking(self.master, False)
        while marker not in self.seen:
            if time.monotonic() > deadline:
                pytest.fail(f"bash did not print {marker!r}; terminal: {self.seen!r}")
            try:
                self.seen += os.read(self.master, 4096)
            except BlockingIOError:
                time.sleep(0.05)

    def type(self, line: str) -> None:
        os.write(self.master, line.encode() + b"\n")

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        os.close(self.master)


@pytest.fixture
def start_terminal() -> Iterator[Callable[[], Terminal]]:
    """Starts bash on demand: after the probe is attached, since a uretprobe misses the
    readline() call already in progress when it attaches."""
    if not bash_has_readline():
        pytest.skip(f"{BASH} exports no readline symbol (bash linked to a shared "
                    "libreadline: point the uretprobe at that library)")
    started: list[Terminal] = []

    def start() -> Terminal:
        started.append(Terminal())
        return started[-1]

    yield start
    for term in started:
        term.close()


def test_bashreadline_prints_typed_lines(ecli: type[Ecli],
                                         start_terminal: Callable[[], Terminal],
                                         no_leaks: object) -> None:
    run = ecli(["run", "--json", "bashreadline"])
    run.wait_attached()
    terminal = start_terminal()
    marker = uuid.uuid4().hex
    terminal.read_until(b"$ ")
    command = f"echo $((6 * 7))-{marker}"
    terminal.type(command)
    terminal.read_until(f"42-{marker}".encode())  # bash ran it (the typed text has no "42")
    terminal.type("exit")
    terminal.proc.wait(timeout=10)
    time.sleep(0.3)
    out, err = run.stop()
    assert run.proc.returncode == 0, err
    mine = [e for e in map(json.loads, out.splitlines()) if e["pid"] == terminal.proc.pid]
    assert mine == [
        {"pid": terminal.proc.pid, "comm": "bash", "line": command},
        {"pid": terminal.proc.pid, "comm": "bash", "line": "exit"},
    ]


def test_bashreadline_pid_filter_leaves_out_other_shells(
        ecli: type[Ecli], start_terminal: Callable[[], Terminal], no_leaks: object) -> None:
    run = ecli(["run", "--json", "bashreadline", "--targ_pid", str(os.getpid())])
    run.wait_attached()
    terminal = start_terminal()
    terminal.read_until(b"$ ")
    terminal.type("true")
    terminal.type("exit")
    terminal.proc.wait(timeout=10)
    time.sleep(0.3)
    out, err = run.stop()
    assert run.proc.returncode == 0, err
    assert out.strip() == ""
