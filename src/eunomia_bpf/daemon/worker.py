"""One supervised program: ``python -m eunomia_bpf.daemon.worker PACKAGE --parent-pid PID
[--paused] [-- PACKAGE ARGS...]``.

The worker loads the package with :class:`~eunomia_bpf.runner.Program` and speaks JSON
lines with the daemon (see :mod:`eunomia_bpf.daemon.supervisor`, which reads them).

stdout, one object per line:

* ``{"seq": N, "source": S, "event": {...}}``: an event, ``seq`` counting from 1 with no
  gaps (the line always starts with ``{"seq":`` so the daemon need not parse it);
* ``{"status": "running"|"paused", "attach": [...], "sources": [...], "pid": P}``;
* ``{"lost": N}``: the kernel's lost-event count, when it changes;
* ``{"reply": ID, ...}``: the answer to a command (``"error"`` on failure);
* ``{"error": "one line"}``: a fatal error (bad package or arguments, load or attach
  refused); the worker then exits with code 1;
* ``{"status": "finished"}``: an iterator-only program printed its output.

stdin, one command a line: ``{"id": ID, "cmd": "pause"|"resume"}`` or
``{"id": ID, "cmd": "map", "name": NAME, "limit": N}``. End of input (the daemon closed the
pipe or died) stops the worker, as do SIGTERM and SIGINT: everything is detached and the
worker exits 0. ``PR_SET_PDEATHSIG`` sends SIGTERM when the daemon dies, even by
``kill -9``. stderr is the worker's log.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import queue
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import Any, BinaryIO

import orjson

from ..errors import EunomiaError
from ..output.jsonl import _default

__all__ = ["EXIT_FAILED", "main"]

EXIT_FAILED = 1
POLL_MS = 50  # how long a command may wait for the poll loop
MAP_LIMIT = 100_000


def dumps(value: Any) -> bytes:
    """JSON bytes; 128-bit integers (beyond orjson) go through the json module."""
    try:
        return orjson.dumps(value, default=_default)
    except (orjson.JSONEncodeError, TypeError):
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False,
                          default=_default).encode()


class _MissingMapError(EunomiaError):
    pass


class _Worker:
    def __init__(self, out: BinaryIO) -> None:
        self.out = out
        self.stop = threading.Event()
        self.commands: queue.SimpleQueue[dict[str, Any]] = queue.SimpleQueue()
        self.seq = 0
        self.lost = 0

    def send(self, obj: dict[str, Any]) -> None:
        self.out.write(dumps(obj) + b"\n")

    def read_commands(self, stream: BinaryIO) -> None:
        for line in stream:
            try:
                command = json.loads(line)
            except ValueError as exc:
                print(f"worker: ignoring a malformed command: {exc}", file=sys.stderr)
                continue
            if isinstance(command, dict):
                self.commands.put(command)
        self.stop.set()  # end of input: the daemon is gone or wants us gone

    def emit_batches(self, program: Any, batches: Sequence[Any]) -> None:
        write = self.out.write
        for batch in batches:
            source = dumps(batch.source)
            for event in batch.to_dicts():
                if batch.sample is not None:
                    event = {"map": batch.source, **event}
                self.seq += 1
                write(b'{"seq":%d,"source":%s,"event":%s}\n' % (self.seq, source, dumps(event)))
        lost = program.lost
        if lost != self.lost:
            self.lost = lost
            self.send({"lost": lost})

    def handle(self, program: Any, command: dict[str, Any]) -> None:
        reply: dict[str, Any] = {"reply": command.get("id")}
        try:
            cmd = command.get("cmd")
            if cmd == "pause":
                program.pause()
                reply["status"] = "paused"
            elif cmd == "resume":
                program.resume()
                reply["status"] = "running"
            elif cmd == "map":
                reply["entries"] = _read_map(program, str(command.get("name")),
                                             int(command.get("limit") or MAP_LIMIT))
            else:
                raise EunomiaError(f"run command {cmd!r}: unknown command")
        except _MissingMapError as exc:
            reply["error"] = str(exc)
            reply["missing"] = True
        except EunomiaError as exc:
            reply["error"] = str(exc)
        except (OSError, ValueError, TypeError, KeyError) as exc:  # a bad read: not fatal
            reply["error"] = f"{command.get('cmd')}: {type(exc).__name__}: {exc}"
        self.send(reply)

    def run(self, package_path: Path, args: list[str], paused: bool) -> int:
        from ..package import read_package
        from ..runner import Program

        try:
            program = Program(read_package(package_path.read_bytes()), origin=str(package_path))
            program.set_arguments(args)
            program.run()
        except (EunomiaError, OSError) as exc:
            self.send({"error": str(exc)})
            return EXIT_FAILED
        try:
            attach = [f"{p.name} ({p.section})" for p in program.spec.programs]
            if paused:
                program.pause()
            self.send({"status": "paused" if paused else "running", "attach": attach,
                       "sources": program.sources, "pid": os.getpid()})
            self.out.flush()
            print(f"worker: {program.spec.name} attached: {', '.join(attach)}", file=sys.stderr)
            while not self.stop.is_set():
                self.emit_batches(program, program.poll(POLL_MS))
                while True:
                    try:
                        command = self.commands.get_nowait()
                    except queue.Empty:
                        break
                    self.handle(program, command)
                if program.finished:
                    self.send({"status": "finished"})
                    break
                self.out.flush()
        except EunomiaError as exc:
            self.send({"error": str(exc)})
            return EXIT_FAILED
        finally:
            program.stop()
            try:
                self.out.flush()
            except BrokenPipeError:
                pass
        print(f"worker: {program.spec.name} detached", file=sys.stderr)
        return 0


def _read_map(program: Any, name: str, limit: int) -> list[dict[str, Any]]:
    try:
        table = program.maps[name]
    except KeyError:
        raise _MissingMapError(f"read map {name}: the program has no such map") from None
    entries: list[dict[str, Any]] = []
    for key, value in table.items():
        if len(entries) >= limit:
            break
        entries.append({"key": key, "value": value})
    return entries


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="eunomia_bpf.daemon.worker")
    parser.add_argument("package", type=Path)
    parser.add_argument("--parent-pid", type=int, required=True)
    parser.add_argument("--paused", action="store_true")
    argv = list(sys.argv[1:] if argv is None else argv)
    split = argv.index("--") if "--" in argv else len(argv)
    ns = parser.parse_args(argv[:split])
    args = argv[split + 1:]  # the package's own options, untouched

    from .._libbpf import set_parent_death_signal

    set_parent_death_signal(signal.SIGTERM)
    if os.getppid() != ns.parent_pid:  # the daemon died before the line above
        return EXIT_FAILED
    logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s", stream=sys.stderr)

    worker = _Worker(sys.stdout.buffer)

    def on_signal(signum: int, frame: FrameType | None) -> None:
        worker.stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    threading.Thread(target=worker.read_commands, args=(sys.stdin.buffer,), daemon=True,
                     name="commands").start()
    try:
        return worker.run(ns.package, args, ns.paused)
    except BrokenPipeError:
        return 0  # the daemon is gone; the kernel objects went with our fds


def _exit(code: int) -> None:
    """Leave without interpreter shutdown: the daemon thread blocked reading stdin would
    otherwise make it abort ("could not acquire lock for <stdin>", SIGABRT) when a
    program ends by itself (an iterator) while the daemon keeps our stdin open."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (BrokenPipeError, ValueError):
            pass
    os._exit(code)


if __name__ == "__main__":
    _exit(main())
