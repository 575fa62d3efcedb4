"""Worker processes, one per program, watched from the daemon's asyncio event loop.

Each program runs in ``python -m eunomia_bpf.daemon.worker`` (see that module for the
JSON-lines protocol). A reader task takes the worker's stdout: event lines go, unparsed,
into a bounded ring of recent events (their ``seq`` read from the line's prefix), so a
client that reconnects with the last ``seq`` it saw misses nothing still buffered; status,
lost counts and command replies are parsed. Another task keeps the last lines of its
stderr as the program's log. The control channel is the worker's stdin (JSON commands:
pause, resume, map reads); signals are used only to stop (SIGTERM, then SIGKILL after
``stop_timeout``). A worker that exits on its own is ``failed`` with its reason (its fatal
error line, or its exit code or signal); the daemon and the other workers go on.

Workers are started with their own session (a Ctrl-C at the daemon's terminal is the
daemon's to handle) and ask the kernel for SIGTERM when the daemon dies.

Everything here runs on one event loop; no locks are needed.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import datetime as _dt
import json
import os
import signal
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from ..errors import EunomiaError
from .config import DaemonConfig
from .state import DesiredProgram, StateError, StateStore

__all__ = [
    "ACTIVE",
    "CommandError",
    "LimitError",
    "ManagedProgram",
    "NotFoundError",
    "ProgramNotFoundError",
    "ProgramStateError",
    "StartError",
    "Supervisor",
    "SupervisorError",
]

ACTIVE = frozenset({"starting", "running", "paused"})
START_TIMEOUT = 60.0  # a verifier may take its time with a large program
COMMAND_TIMEOUT = 15.0
_SEQ_PREFIX = b'{"seq":'


class SupervisorError(EunomiaError):
    """A program cannot be started, found or controlled."""


class NotFoundError(SupervisorError):
    """The program or map named in a request does not exist."""


class ProgramNotFoundError(NotFoundError):
    """No program has that id."""


class CommandError(SupervisorError):
    """The worker refused a command (e.g. a map that cannot be read)."""


class LimitError(SupervisorError):
    """A configured limit (programs, package size) would be exceeded."""


class StartError(SupervisorError):
    """The worker could not load or attach the program (its one-line reason)."""


class ProgramStateError(SupervisorError):
    """The program is not in a state that allows the request (e.g. pausing a failed one)."""


def _iso(ts: float) -> str:
    return _dt.datetime.fromtimestamp(ts, _dt.UTC).isoformat(timespec="seconds")


def _exit_reason(returncode: int) -> str:
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return f"worker killed by {name}"
    return f"worker exited with code {returncode}"


class ManagedProgram:
    """One program as the daemon sees it: status, counts, recent events, log."""

    def __init__(self, desired: DesiredProgram, *, event_buffer: int, log_lines: int,
                 on_failed: Callable[[ManagedProgram], None] | None = None) -> None:
        self._on_failed = on_failed
        self.id = desired.id
        self.name = desired.name
        self.digest = desired.digest
        self.args = list(desired.args)
        self.status = "starting"
        self.started_at = time.time()
        self.attach: list[str] = []
        self.sources: list[str] = []
        self.events = 0
        self.lost = 0
        self.exit_reason: str | None = None
        self.pid: int | None = None
        self._ring: collections.deque[tuple[int, bytes]] = collections.deque(maxlen=event_buffer)
        self._log: collections.deque[str] = collections.deque(maxlen=log_lines)
        self._proc: asyncio.subprocess.Process | None = None
        self._ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._done = asyncio.Event()
        self._new_events = asyncio.Event()
        self._replies: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._next_command = 0
        self._fatal: str | None = None
        self._finished = False
        self._stopping = False
        self._tasks: list[asyncio.Task[None]] = []

    # -- what the API shows ----------------------------------------------------------
    @property
    def active(self) -> bool:
        return self.status in ACTIVE

    def info(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "digest": self.digest, "args": self.args,
                "status": self.status, "started_at": _iso(self.started_at),
                "attach": self.attach, "sources": self.sources, "events": self.events,
                "lost": self.lost, "exit_reason": self.exit_reason, "pid": self.pid}

    def events_after(self, cursor: int) -> list[tuple[int, bytes]]:
        """Buffered events with ``seq > cursor``, oldest first. A cursor beyond the newest
        event comes from an earlier run of the worker (the daemon restarted and the
        count began again): the client gets everything buffered."""
        ring = self._ring
        if not ring:
            return []
        first, last = ring[0][0], ring[-1][0]
        if cursor >= last:
            return [] if cursor == last else list(ring)
        start = max(0, cursor - first + 1)
        return [ring[i] for i in range(start, len(ring))]

    @property
    def last_seq(self) -> int:
        return self._ring[-1][0] if self._ring else 0

    async def wait_events(self, timeout: float) -> None:
        """Return when new events arrive, the worker ends, or ``timeout`` passes."""
        if self._done.is_set():
            return
        waiter = self._new_events
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(waiter.wait(), timeout)

    @property
    def done(self) -> bool:
        return self._done.is_set()

    def log_tail(self, n: int | None = None) -> list[str]:
        lines = list(self._log)
        return lines if n is None or n <= 0 else lines[-n:]

    def note(self, line: str) -> None:
        self._log.append(f"eunomiad: {line}")

    # -- the worker ------------------------------------------------------------------
    async def spawn(self, package: Path, *, paused: bool) -> None:
        cmd = [sys.executable, "-m", "eunomia_bpf.daemon.worker", str(package),
               "--parent-pid", str(os.getpid()), *(["--paused"] if paused else []),
               "--", *self.args]
        self._proc = await asyncio.create_subprocess_exec(
            *cmd, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, start_new_session=True, cwd="/")
        self.pid = self._proc.pid
        self.note(f"started worker {self.pid}")
        self._tasks = [asyncio.create_task(self._watch(), name=f"watch {self.id}")]

    def fail_now(self, reason: str) -> None:
        """Mark a program that could not even be spawned."""
        self.status = "failed"
        self.exit_reason = reason
        self.note(reason)
        self._settle()

    async def _watch(self) -> None:
        proc = self._proc
        assert proc is not None and proc.stdout is not None and proc.stderr is not None
        await asyncio.gather(self._read_stdout(proc.stdout), self._read_stderr(proc.stderr))
        returncode = await proc.wait()
        if self._stopping:
            self.status = "stopped"
        elif self._finished and returncode == 0:
            self.status = "stopped"
            self.exit_reason = "finished: the program's output is complete"
        else:
            self.status = "failed"
            self.exit_reason = self._fatal or self._crash_reason(returncode)
        self.note(f"worker {proc.pid} exited ({_exit_reason(returncode)}); "
                  f"status {self.status}")
        self._settle()

    def _crash_reason(self, returncode: int) -> str:
        last = next((ln for ln in reversed(self._log) if ln.strip()
                     and not ln.startswith("eunomiad: ")), "")
        return f"{_exit_reason(returncode)}: {last.strip()}" if last else _exit_reason(returncode)

    def _settle(self) -> None:
        if self.status == "failed" and self._on_failed is not None:
            self._on_failed(self)
        for future in self._replies.values():
            if not future.done():
                future.set_exception(ProgramStateError(
                    f"control program {self.id}: its worker exited"))
        self._replies.clear()
        if not self._ready.done():
            self._ready.set_result(None)
        self._done.set()
        self._wake()

    def _wake(self) -> None:
        waiter, self._new_events = self._new_events, asyncio.Event()
        waiter.set()

    async def _read_stdout(self, stream: asyncio.StreamReader) -> None:
        pending = b""
        while True:
            chunk = await stream.read(1 << 16)
            if not chunk:
                break
            lines = (pending + chunk).split(b"\n")
            pending = lines.pop()
            before = self.events
            for line in lines:
                if line.startswith(_SEQ_PREFIX):
                    end = line.find(b",", len(_SEQ_PREFIX))
                    self._ring.append((int(line[len(_SEQ_PREFIX):end]), line))
                    self.events += 1
                elif line:
                    self._control(line)
            if self.events != before:
                self._wake()

    def _control(self, line: bytes) -> None:
        try:
            msg = json.loads(line)
        except ValueError:
            self.note(f"malformed line from the worker: {line[:200]!r}")
            return
        if "reply" in msg:
            future = self._replies.pop(msg["reply"], None)
            if future is not None and not future.done():
                future.set_result(msg)
        elif "lost" in msg:
            self.lost = int(msg["lost"])
        elif "error" in msg:
            self._fatal = str(msg["error"])
            self.note(f"error: {self._fatal}")
        elif msg.get("status") == "finished":
            self._finished = True
        elif "status" in msg:
            self.status = str(msg["status"])
            self.attach = list(msg.get("attach") or [])
            self.sources = list(msg.get("sources") or [])
            if not self._ready.done():
                self._ready.set_result(None)

    async def _read_stderr(self, stream: asyncio.StreamReader) -> None:
        while True:
            try:
                line = await stream.readline()
            except ValueError:  # a line longer than the reader's limit
                line = await stream.read(1 << 16)
            if not line:
                break
            self._log.append(line.decode(errors="replace").rstrip("\n"))

    async def wait_ready(self, timeout: float = START_TIMEOUT) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self._ready), timeout)

    async def command(self, cmd: str, **fields: Any) -> dict[str, Any]:
        """Send one command to the worker and wait for its reply."""
        proc = self._proc
        if not self.active or proc is None or proc.stdin is None or self._done.is_set():
            raise ProgramStateError(f"{cmd} program {self.id}: it is {self.status}")
        self._next_command += 1
        ident = self._next_command
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._replies[ident] = future
        try:
            proc.stdin.write(json.dumps({"id": ident, "cmd": cmd, **fields}).encode() + b"\n")
            await proc.stdin.drain()
            reply = await asyncio.wait_for(future, COMMAND_TIMEOUT)
        except (ConnectionError, BrokenPipeError):
            raise ProgramStateError(f"{cmd} program {self.id}: its worker exited") from None
        except TimeoutError:
            raise SupervisorError(f"{cmd} program {self.id}: no answer from its worker "
                                  f"within {COMMAND_TIMEOUT:g} s") from None
        finally:
            self._replies.pop(ident, None)
        if "error" in reply:
            if reply.get("missing"):
                raise NotFoundError(str(reply["error"]))
            raise CommandError(str(reply["error"]))
        if "status" in reply:
            self.status = str(reply["status"])
        return reply

    async def terminate(self, timeout: float) -> None:
        """SIGTERM, then SIGKILL after ``timeout``; returns once the worker is gone."""
        proc = self._proc
        if proc is None or self._done.is_set():
            if self.status in ACTIVE:
                self.status = "stopped"
            return
        self._stopping = True
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(self._done.wait(), timeout)
        except TimeoutError:
            self.note(f"worker {proc.pid} ignored SIGTERM for {timeout:g} s: SIGKILL")
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await self._done.wait()


class Supervisor:
    """Every program of the daemon, its desired state and its worker."""

    def __init__(self, config: DaemonConfig, store: StateStore) -> None:
        self.config = config
        self.store = store
        self.programs: dict[str, ManagedProgram] = {}
        self.closing = asyncio.Event()
        self.failures = 0  # workers that failed to load or died, since the daemon started

    def _new(self, desired: DesiredProgram) -> ManagedProgram:
        program = ManagedProgram(desired, event_buffer=self.config.limits.event_buffer,
                                 log_lines=self.config.limits.log_lines,
                                 on_failed=self._count_failure)
        self.programs[program.id] = program
        return program

    def get(self, program_id: str) -> ManagedProgram:
        try:
            return self.programs[program_id]
        except KeyError:
            raise ProgramNotFoundError(f"find program {program_id}: no such program") from None

    def list_programs(self) -> list[ManagedProgram]:
        return list(self.programs.values())

    def count(self, statuses: Iterable[str] = ACTIVE) -> int:
        wanted = set(statuses)
        return sum(1 for p in self.programs.values() if p.status in wanted)

    async def _launch(self, program: ManagedProgram, *, paused: bool) -> None:
        try:
            path = self.store.package_path(program.digest)
            await program.spawn(path, paused=paused)
        except (StateError, OSError) as exc:
            program.fail_now(f"start worker: {exc}")
        await program.wait_ready()

    def _count_failure(self, program: ManagedProgram) -> None:
        self.failures += 1

    async def start(self, data: bytes, args: list[str], name: str) -> ManagedProgram:
        """Store the package and the desired state, start the worker, wait until the
        program is attached. A program that fails to load is forgotten (StartError)."""
        if self.closing.is_set():
            raise ProgramStateError("start program: the daemon is shutting down")
        limit = self.config.limits.max_programs
        if self.count() >= limit:
            raise LimitError(f"start program: {limit} programs are already running "
                             "(limits.max_programs); stop one first")
        digest = self.store.put_package(data)
        program = self._new(self.store.add(name, digest, args))
        await self._launch(program, paused=False)
        if program.status == "starting":  # the worker never said it was attached
            await program.terminate(self.config.stop_timeout)
            program.status = "failed"
            program.exit_reason = f"start program: not attached within {START_TIMEOUT:g} s"
        if program.status in ("running", "paused"):
            return program
        self.programs.pop(program.id, None)
        self.store.remove(program.id)
        if program.status == "failed":
            raise StartError(program.exit_reason or "start program: the worker failed")
        raise ProgramStateError(f"start program {program.id}: stopped before it was running")

    async def restore(self) -> list[ManagedProgram]:
        """Start every program of the desired state (at daemon start)."""
        self.store.collect_garbage()
        programs = [(self._new(row), row.desired == "paused") for row in self.store.programs()]
        await asyncio.gather(*(self._launch(p, paused=paused) for p, paused in programs))
        return [p for p, _ in programs]

    async def stop(self, program_id: str) -> ManagedProgram:
        """Stop the worker (all its kernel objects go with it) and forget the program."""
        program = self.get(program_id)
        self.store.remove(program_id)
        await program.terminate(self.config.stop_timeout)
        program.status = "stopped"
        self.programs.pop(program_id, None)
        return program

    async def pause(self, program_id: str) -> ManagedProgram:
        program = self.get(program_id)
        await program.command("pause")
        self.store.set_desired(program_id, "paused")
        return program

    async def resume(self, program_id: str) -> ManagedProgram:
        program = self.get(program_id)
        await program.command("resume")
        self.store.set_desired(program_id, "running")
        return program

    async def read_map(self, program_id: str, name: str) -> list[Any]:
        reply = await self.get(program_id).command("map", name=name)
        entries: list[Any] = reply.get("entries") or []
        return entries

    async def shutdown(self) -> None:
        """Stop every worker; the desired state stays for the next start."""
        self.closing.set()
        for program in self.programs.values():
            program._wake()  # event streams notice the shutdown
        await asyncio.gather(*(p.terminate(self.config.stop_timeout)
                               for p in self.programs.values()))
