"""The Python API: a package you can run, poll and stop — what ``ecli run`` is built on.

>>> with Program.open("opensnoop", arguments={"targ_pid": 1234}) as prog:
...     for event in prog.events(duration=5):
...         print(event["fname"])

Stages mirror the loader: ``open`` (resolve + parse, no kernel) -> ``run`` (load, attach,
open event readers) -> ``poll`` / ``batches`` / ``events`` / ``process_message`` -> ``stop``.
"""

from __future__ import annotations

import functools
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

from .errors import EunomiaError
from .package import Package, read_package
from .spec import MapType, ObjectSpec

if TYPE_CHECKING:
    import numpy as np

    from .decode import Layout
    from .events import EventSource, Poller
    from .loader import AttachOptions, RunningProgram
    from .maps import ProgramMaps
    from .sampler import MapSample, Sampler
    from .stacks import StackPlan, StackResolver

__all__ = ["Batch", "Program", "open_program"]

TRACE_PIPE = "trace_pipe"
# "<comm>-<pid> [<cpu>] <flags> <timestamp>: bpf_trace_printk: <message>"
_TRACE_LINE = re.compile(r"^\s*.*?-(\d+)\s+\[\d+\]")
# package options that name the one process a program is about (ecc examples use these)
_PID_OPTIONS = ("pid_filter", "targ_pid", "target_pid", "pid", "targ_tgid")


@dataclass
class Batch:
    """Records read from one event source in one go.

    ``records`` is a numpy structured array (one row per event) for export maps;
    ``lines`` holds raw ``bpf_printk`` lines for the trace pipe; ``sample`` is one
    reading of a sampled map (histograms, counters). ``extra`` holds columns computed
    while the program ran (``kstack``/``ustack``: symbolized stacks, innermost frame
    first); they add to or replace the decoded fields.
    """

    source: str
    records: np.ndarray[Any, Any] | None = None
    layout: Layout | None = None
    lines: list[str] = field(default_factory=list)
    sample: MapSample | None = None
    extra: dict[str, list[Any]] = field(default_factory=dict)
    _columns: dict[str, list[Any]] | None = field(default=None, repr=False, compare=False)

    def __len__(self) -> int:
        if self.sample is not None:
            return len(self.sample.entries)
        return len(self.records) if self.records is not None else len(self.lines)

    @property
    def names(self) -> tuple[str, ...]:
        if self.sample is not None:
            return ("key", "value")
        if self.layout is None:
            return ("trace",)
        return self.layout.names + tuple(n for n in self.extra if n not in self.layout.names)

    def columns(self) -> dict[str, list[Any]]:
        """Column-wise Python values: the fastest way to get at many events.

        Decoded once per batch (output and metrics both read them); the lists are
        shared, so treat them as read-only.
        """
        if self._columns is None:
            self._columns = self._decode_columns()
        return dict(self._columns)

    def _decode_columns(self) -> dict[str, list[Any]]:
        if self.sample is not None:
            return {"key": [e["key"] for e in self.sample.entries],
                    "value": [e["value"] for e in self.sample.entries]}
        if self.layout is None or self.records is None:
            return {"trace": list(self.lines)}
        return {**self.layout.columns(self.records), **self.extra}

    def to_dicts(self) -> list[dict[str, Any]]:
        if self.sample is not None:
            return list(self.sample.entries)
        if self.layout is None or self.records is None:
            return [{"trace": ln} for ln in self.lines]
        out: list[dict[str, Any]] = self.layout.decode_batch(self.records)
        for name, column in self.extra.items():
            for row, value in zip(out, column):
                row[name] = value
        return out

    def to_pandas(self) -> Any:
        """A ``pandas.DataFrame``, one row per event (needs the ``data`` extra)."""
        from .dataframes import batch_to_pandas

        return batch_to_pandas(self)

    def to_arrow(self) -> Any:
        """A ``pyarrow.RecordBatch``, one row per event (needs the ``data`` extra)."""
        from .dataframes import batch_to_arrow

        return batch_to_arrow(self)


class Program:
    """A package ready to run in the kernel; a context manager that stops it on exit."""

    def __init__(self, package: Package, *, arguments: Mapping[str, Any] | None = None,
                 attach: AttachOptions | None = None, origin: str = "",
                 btf_path: str | None = None) -> None:
        self.package = package
        self.origin = origin
        self.spec = ObjectSpec.from_package(package)
        self._arguments: dict[str, Any] = dict(arguments or {})
        self._attach = attach
        self._btf_path = btf_path
        self._running: RunningProgram | None = None
        self._poller: Poller | None = None
        self._sources: dict[EventSource, tuple[str, Layout | None]] = {}
        self._sampler: Sampler | None = None
        self._stacks: StackResolver | None = None
        self._iterated = False
        self._stop = threading.Event()
        self._maps: ProgramMaps | None = None

    # -- construction --------------------------------------------------------------
    @classmethod
    def from_bytes(cls, data: bytes, **kwargs: Any) -> Program:
        return cls(read_package(data), **kwargs)

    @classmethod
    def open(cls, ref: str, **kwargs: Any) -> Program:
        """Resolve ``ref`` (path, ``-``, URL or bare name) and parse the package."""
        from .resolve import resolve

        found = resolve(ref)
        return cls(read_package(found.data), origin=found.origin, **kwargs)

    # -- configuration -------------------------------------------------------------
    def set_arguments(self, given: Mapping[str, Any] | Sequence[str]) -> None:
        """Set package variables from a mapping or from command-line style strings."""
        from .args import parse_arguments

        if isinstance(given, Mapping):
            self._arguments.update(given)
        else:
            self._arguments.update(parse_arguments(self.spec, list(given)))

    # -- lifecycle -----------------------------------------------------------------
    @property
    def running(self) -> RunningProgram | None:
        return self._running

    @property
    def maps(self) -> ProgramMaps:
        """The program's maps by name, each a typed :class:`~eunomia_bpf.maps.Map`
        (``prog.maps["counts"][pid]``); only while the program runs."""
        if self._running is None:
            raise EunomiaError(f"get maps of {self.spec.name}: the program is not running")
        if self._maps is None or self._maps.running is not self._running:
            from .maps import ProgramMaps

            self._maps = ProgramMaps(self._running)
        return self._maps

    @property
    def paused(self) -> bool:
        return self._running is not None and self._running.detached

    def pause(self) -> None:
        """Detach every link: the programs stop firing; maps and their contents, and
        events already buffered, stay. :meth:`resume` attaches again."""
        if self._running is None:
            raise EunomiaError(f"pause {self.spec.name}: the program is not running")
        if not self._running.detached:
            self._running.detach()

    def resume(self) -> None:
        """Attach the programs again after :meth:`pause` (a no-op when not paused)."""
        if self._running is None:
            raise EunomiaError(f"resume {self.spec.name}: the program is not running")
        self._running.reattach()

    def run(self) -> Self:
        """Load and attach. Idempotent while running.

        The event readers open on the first :meth:`poll`: the kernel buffers events
        from the moment of attachment, and the decoder's import stays off the path to
        "attached".
        """
        if self._running is not None:
            return self
        from .args import encode_arguments
        from .loader import AttachOptions, load

        values = encode_arguments(self.spec, self._arguments)
        self._stop.clear()
        self._iterated = False
        try:
            self._running = load(self.spec, values, attach=self._attach or AttachOptions(),
                                 btf_path=self._btf_path, before_attach=self._open_perf_buffers)
        except BaseException:
            self.stop()  # perf buffers opened before the failure
            raise
        return self

    def _open_perf_buffers(self, running: RunningProgram) -> None:
        """Perf buffers get events only once their rings exist: open them before attach.
        (Ring buffers keep everything from attachment on; they open at the first poll.)"""
        for export in self.spec.exports:
            handle = running.maps[export.map_name]
            if handle.map_type == MapType.PERF_EVENT_ARRAY:
                from .decode import layout_for  # only perf packages pay for it here
                from .events import PerfBufferReader

                layout = layout_for(self.spec.btf, export.type_id)
                reader = PerfBufferReader(handle.fd, layout.dtype, self.spec.perf_buffer_pages)
                self._sources[reader] = (export.map_name, layout)

    def _open_sources(self) -> None:
        from .decode import layout_for
        from .events import Poller, RingBufferReader, TracePipeReader

        assert self._running is not None
        for export in self.spec.exports:
            handle = self._running.maps[export.map_name]
            if handle.map_type == MapType.RINGBUF:
                layout = layout_for(self.spec.btf, export.type_id)
                reader = RingBufferReader(handle.fd, handle.max_entries, layout.dtype)
                self._sources[reader] = (export.map_name, layout)
        if self._wants_trace_pipe():
            self._sources[TracePipeReader()] = (TRACE_PIPE, None)
        from .sampler import Sampler

        self._sampler = Sampler(self.spec, self._running.maps)
        if self.stack_plans:
            from .stacks import StackResolver

            # stack maps live only as long as the program: resolve ids as batches arrive
            self._stacks = StackResolver(self.stack_plans, self._running.maps)
        self._poller = Poller(list(self._sources))

    def _wants_trace_pipe(self) -> bool:
        """No event map, no sampled map and not only iterators: the program speaks
        through bpf_printk."""
        return (not self.spec.exports and not any(m.sample for m in self.spec.maps)
                and not all(_is_iterator(p.section) for p in self.spec.programs))

    def _iterator_batches(self) -> list[Batch]:
        """Run each iterator once (``iter/task``...): its text output as lines."""
        from .attach.iterator import IterLink

        assert self._running is not None
        out = []
        for link in self._running.links:
            if isinstance(link, IterLink) and not link.closed:
                text = link.read().decode(errors="replace")
                out.append(Batch(f"iter/{link.program}", lines=text.splitlines()))
        return out

    @property
    def runs_once(self) -> bool:
        """Only iterators: the program prints their output once and is done."""
        return bool(self.spec.programs) and all(
            _is_iterator(p.section) for p in self.spec.programs) and not self.spec.exports

    @property
    def finished(self) -> bool:
        """True when nothing more can come: only iterators, and they have run."""
        return (self._poller is not None and not self._sources and not self._sampler
                and self._iterated)

    @property
    def sources(self) -> list[str]:
        """Names of the event sources: export maps, sampled maps, or the trace pipe."""
        names = [e.map_name for e in self.spec.exports]
        names += [m.name for m in self.spec.maps if m.sample]
        names += [f"iter/{p.name}" for p in self.spec.programs if _is_iterator(p.section)]
        return names or ([TRACE_PIPE] if self._wants_trace_pipe() else [])

    @functools.cached_property
    def stack_plans(self) -> list[StackPlan]:
        """Event fields that hold stacks (``stack_trace`` interpreter or stack-id names);
        their events gain columns of symbolized frames (see :mod:`eunomia_bpf.stacks`)."""
        from .stacks import stack_plans

        return stack_plans(self.spec, self.package.bpf_skel)

    @property
    def lost(self) -> int:
        """Events the kernel reported as lost (perf buffers)."""
        return sum(int(getattr(s, "lost", 0)) for s in self._sources)

    def stop(self) -> None:
        """Detach and unload everything. Idempotent; safe from another thread."""
        self._stop.set()
        self._sampler = None
        self._stacks = None
        poller, self._poller = self._poller, None
        sources, self._sources = self._sources, {}
        running, self._running = self._running, None
        errors: list[BaseException] = []
        for closer in [poller, *sources, running]:
            if closer is None:
                continue
            try:
                closer.close()
            except EunomiaError as exc:
                errors.append(exc)
        if errors:
            raise errors[0]

    close = stop

    def request_stop(self) -> None:
        """Ask a running ``process_message`` / ``batches`` loop to end (signal-safe)."""
        self._stop.set()

    def __enter__(self) -> Self:
        return self.run()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    # -- consuming -----------------------------------------------------------------
    def poll(self, timeout_ms: int | None = None) -> list[Batch]:
        """Wait up to ``timeout_ms`` for events; return what arrived, one batch a source."""
        if self._running is None:
            raise EunomiaError(f"poll {self.spec.name}: the program is not running")
        if self._poller is None:
            try:
                self._open_sources()
            except BaseException:
                self.stop()
                raise
        assert self._poller is not None
        wait = self.spec.poll_timeout_ms if timeout_ms is None else timeout_ms
        sampler = self._sampler
        if sampler:
            next_sample = sampler.seconds_to_next()
            if next_sample is not None:
                wait = min(wait, int(next_sample * 1000) + 1) if wait >= 0 \
                    else int(next_sample * 1000) + 1
        out: list[Batch] = []
        if not self._iterated:
            self._iterated = True
            out.extend(self._iterator_batches())
            if out and not self._sources and not sampler:
                return out
        for source, data in self._poller.poll(wait):
            name, layout = self._sources[source]
            if layout is None:
                lines = self._trace_lines(data)
                if lines:
                    out.append(Batch(name, lines=lines))
            elif len(data):
                extra = self._stacks.columns(name, data) if self._stacks else {}
                out.append(Batch(name, records=data, layout=layout, extra=extra))
        if sampler:
            out.extend(Batch(s.map_name, sample=s) for s in sampler.due())
        return out

    def _trace_lines(self, lines: Sequence[str]) -> list[str]:
        """Only bpf_printk lines; only the chosen process's when a pid option is set.

        The trace pipe is shared by every tracer on the host, and some packages (ecc's
        ``simple``) declare a ``pid_filter`` they never apply in the kernel.
        """
        pid = self._trace_pid()
        out = []
        for line in lines:
            if "bpf_trace_printk:" not in line:
                continue
            if pid:
                m = _TRACE_LINE.match(line)
                if m is None or int(m.group(1)) != pid:
                    continue
            out.append(line)
        return out

    def _trace_pid(self) -> int:
        for name in _PID_OPTIONS:
            value = self._arguments.get(name)
            if isinstance(value, int) and not isinstance(value, bool) and value > 0:
                return value
        return 0

    def batches(self, *, duration: float | None = None,
                timeout_ms: int | None = None) -> Iterator[Batch]:
        """Yield batches until ``stop``/``request_stop`` or ``duration`` seconds pass."""
        if self._running is None:
            self.run()
        deadline = None if duration is None else time.monotonic() + duration
        wait = self.spec.poll_timeout_ms if timeout_ms is None else timeout_ms
        while not self._stop.is_set():
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                wait_now = int(min(wait, left * 1000) + 0.999)
            else:
                wait_now = wait
            yield from self.poll(wait_now)
            if self.finished:
                break

    def events(self, *, duration: float | None = None) -> Iterator[dict[str, Any]]:
        """Yield one decoded dict per event (``{"trace": line}`` for bpf_printk lines)."""
        for batch in self.batches(duration=duration):
            yield from batch.to_dicts()

    def process_message(self, receiver: Callable[[dict[str, Any]], Any], *,
                        duration: float | None = None) -> None:
        """Call ``receiver`` with each decoded event until stopped (the seed's API)."""
        for event in self.events(duration=duration):
            receiver(event)


def _is_iterator(section: str) -> bool:
    return section.split("/", 1)[0] in ("iter", "iter.s")


def open_program(ref: str, **kwargs: Any) -> Program:
    """Shorthand for :meth:`Program.open`."""
    return Program.open(ref, **kwargs)
