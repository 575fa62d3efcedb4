"""Event sources: BPF ring buffers, perf buffers and the trace pipe, and one poller.

The ring buffer is the fast path. It is read straight from its mmap, without a libbpf
callback per event: from the record at the consumer position, the span up to the
producer position is viewed as an array of records of that record's size (header +
payload), every header is checked at once and the run of same-size records is copied
out in one numpy copy. Only where the size changes, or at discarded or still-busy
records, does the reader look at a single header again. One ``read()`` returns one numpy
structured array, ready for ``Layout.decode_batch``.

The perf buffer is the legacy path (libbpf ``perf_buffer``, one callback per event) and
the trace pipe returns ``bpf_printk`` lines. Every source has ``fileno()`` for epoll,
``read()``, ``lost`` and an idempotent ``close()``; ``Poller`` waits on all of them.
"""

from __future__ import annotations

import errno
import mmap
import os
import select
import time
from collections.abc import Iterable
from typing import Any, Protocol, cast

import numpy as np

from eunomia_bpf import _libbpf
from eunomia_bpf._closing import Closing
from eunomia_bpf.errors import EunomiaError, NotSupportedError

__all__ = [
    "EventSource",
    "PerfBufferReader",
    "Poller",
    "RingBufferReader",
    "TracePipeReader",
]

# struct bpf_ringbuf_hdr { u32 len; u32 pg_off; }; the two top bits of len are flags.
_HEADER_SIZE = 8
_BUSY = 1 << 31
_DISCARD = 1 << 30
_LENGTH_MASK = _DISCARD - 1

TRACE_PIPES = ("/sys/kernel/tracing/trace_pipe", "/sys/kernel/debug/tracing/trace_pipe")


class EventSource(Protocol):
    """What ``Poller`` needs from a source."""

    lost: int

    def fileno(self) -> int: ...
    def read(self) -> Any: ...
    def close(self) -> None: ...


class _Word(Protocol):
    value: int


class RingBufferReader(Closing):
    """Reads a ``BPF_MAP_TYPE_RINGBUF`` map through its mmap, in batches.

    ``read()`` returns the committed records (at most ``max_batch``) as a numpy array of
    ``dtype`` and advances the consumer position past them. Records shorter than
    ``dtype`` are zero-padded, longer ones cut. The kernel does not tell the consumer
    about drops, so ``lost`` stays 0 (count them in the program).

    ``max_batch`` bounds the memory of one batch: decoding a few thousand records at a
    time stays in the CPU cache and in memory the allocator reuses, while hundreds of
    thousands at once cost a page fault per few records (measured: 3x slower JSON).
    """

    lost = 0

    def __init__(self, map_fd: int, max_entries: int, dtype: np.dtype[Any] | Any, *,
                 max_batch: int = 4096) -> None:
        if max_entries <= 0 or max_entries & (max_entries - 1):
            raise EunomiaError(f"open ring buffer: size {max_entries} is not a power of 2")
        self.dtype: np.dtype[Any] = np.dtype(dtype)
        if self.dtype.itemsize == 0:
            raise EunomiaError("open ring buffer: record type has size 0")
        self._fd = map_fd
        self._mask = max_entries - 1
        self._size = self.dtype.itemsize
        self.max_batch = max_batch
        #: the last read() stopped at max_batch with records left behind
        self.more = False
        self._framings: dict[tuple[int, int], np.dtype[Any]] = {}
        page = mmap.PAGESIZE
        try:
            self._consumer_map = mmap.mmap(map_fd, page, mmap.MAP_SHARED,
                                           mmap.PROT_READ | mmap.PROT_WRITE, offset=0)
        except OSError as exc:
            raise EunomiaError(f"map ring buffer consumer page: {exc.strerror}") from exc
        try:
            # The kernel maps the data area twice in a row, so a record that wraps
            # around the end is still contiguous here.
            self._producer_map = mmap.mmap(map_fd, page + 2 * max_entries, mmap.MAP_SHARED,
                                           mmap.PROT_READ, offset=page)
        except OSError as exc:
            self._consumer_map.close()
            raise EunomiaError(f"map ring buffer data: {exc.strerror}") from exc
        # Positions are single 8-byte loads and stores, never byte-wise copies.
        self._consumer_pos = cast(_Word, _libbpf.u64_at(self._consumer_map, 0))  # writable
        self._producer_pos = _libbpf.u64_at(self._producer_map, 0)
        self._bytes = np.frombuffer(self._producer_map, np.uint8, offset=page)
        self._words = self._bytes.view(np.uint32)  # for single 4-byte header loads
        self._closed = False

    def fileno(self) -> int:
        return self._fd

    def pending(self) -> int:
        """Bytes between the consumer and producer positions (0: nothing to read)."""
        return int(self._producer_pos.value - self._consumer_pos.value)

    def read(self) -> np.ndarray[Any, Any]:
        """Copy out up to ``max_batch`` committed records and release their space."""
        if self._closed:
            raise EunomiaError("read ring buffer: reader is closed")
        pos = self._consumer_pos.value
        end = self._producer_pos.value
        chunks: list[np.ndarray[Any, Any]] = []
        taken, limit = 0, self.max_batch
        words, mask = self._words, self._mask
        while pos < end and taken < limit:
            start = pos & mask
            header = int(words[start >> 2])  # one aligned 4-byte load, as the kernel writes it
            if header & _BUSY:
                break
            length = header & _LENGTH_MASK
            stride = (_HEADER_SIZE + length + 7) & ~7
            if header & _DISCARD:
                pos += stride
                continue
            # Assume the records that follow have the same length, check all their
            # headers at once, and take the run that does.
            count = min((end - pos) // stride, limit - taken)
            if count > 1:
                span = self._bytes[start:start + count * stride]
                odd = np.flatnonzero(span.view(self._framing(stride, 0))["len"] != length)
                if odd.size:
                    count = int(odd[0])
            elif count < 1:
                break  # cannot happen with a sane kernel: the record ends past producer_pos
            chunks.append(self._copy(start, count, length, stride))
            pos += count * stride
            taken += count
        self.more = taken >= limit and pos < end
        if pos != self._consumer_pos.value:
            self._consumer_pos.value = pos
        if len(chunks) == 1:
            return chunks[0]
        if not chunks:
            return np.empty(0, self.dtype)
        return np.concatenate(chunks)

    def _framing(self, stride: int, payload: int) -> np.dtype[Any]:
        """A record as numpy sees it in the ring: the header's len, and with ``payload``
        the first ``dtype.itemsize`` bytes of data."""
        key = (stride, payload)
        framing = self._framings.get(key)
        if framing is None:
            names, formats, offsets = ["len"], [np.dtype(np.uint32)], [0]
            if payload:
                names.append("payload")
                formats.append(self.dtype)
                offsets.append(_HEADER_SIZE)
            framing = self._framings[key] = np.dtype(
                {"names": names, "formats": formats, "offsets": offsets, "itemsize": stride})
        return framing

    def _copy(self, start: int, count: int, length: int, stride: int) -> np.ndarray[Any, Any]:
        """``count`` records of ``length`` bytes at ``start`` as one new array of dtype."""
        span = self._bytes[start:start + count * stride]
        if length >= self._size:  # whole or longer than the type: cut
            records: np.ndarray[Any, Any] = span.view(self._framing(stride, 1))["payload"].copy()
            return records
        padded = np.zeros(count, self.dtype)  # shorter than the type: zero-pad
        padded.view(np.uint8).reshape(count, self._size)[:, :length] = (
            span.reshape(count, stride)[:, _HEADER_SIZE:_HEADER_SIZE + length])
        return padded

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        # Views into the maps must go before the maps can be unmapped.
        release = getattr(self._producer_pos, "release", None)
        if release is not None:
            release()
        del self._consumer_pos, self._producer_pos, self._bytes, self._words
        self._consumer_map.close()
        self._producer_map.close()


class PerfBufferReader(Closing):
    """Reads a ``BPF_MAP_TYPE_PERF_EVENT_ARRAY`` through libbpf's perf buffer.

    libbpf calls back once per event, which costs microseconds each: use a ring buffer
    for high rates. Samples are gathered and returned as one array per ``read()``;
    ``lost`` sums the drops the kernel reports.
    """

    def __init__(self, map_fd: int, dtype: np.dtype[Any] | Any, pages: int = 64) -> None:
        self.dtype: np.dtype[Any] = np.dtype(dtype)
        self.lost = 0
        self._size = self.dtype.itemsize
        self._samples: list[bytes] = []
        from eunomia_bpf._libbpf.perfbuf import perf_buffer_open

        self._buffer = perf_buffer_open(map_fd, pages, self._on_sample, self._on_lost)
        self._closed = False

    def _on_sample(self, cpu: int, data: bytes) -> None:
        self._samples.append(data)

    def _on_lost(self, cpu: int, count: int) -> None:
        self.lost += count

    def fileno(self) -> int:
        return int(self._buffer.epoll_fd())

    def read(self) -> np.ndarray[Any, Any]:
        if self._closed:
            raise EunomiaError("read perf buffer: reader is closed")
        self._buffer.consume()
        samples, self._samples = self._samples, []
        size = self._size
        raw = b"".join(s[:size].ljust(size, b"\0") if len(s) != size else s for s in samples)
        return np.frombuffer(raw, self.dtype).copy() if raw else np.empty(0, self.dtype)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._buffer.free()


class TracePipeReader(Closing):
    """Lines written by ``bpf_printk``, read from the tracefs ``trace_pipe``.

    The trace pipe is global: other programs' lines appear too, filter them yourself.
    Reading consumes them for every other reader.
    """

    lost = 0

    def __init__(self, path: str | None = None) -> None:
        candidates = (path,) if path else TRACE_PIPES
        for candidate in candidates:
            try:
                self._fd = os.open(candidate, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
                break
            except FileNotFoundError:
                continue
            except OSError as exc:
                raise EunomiaError(f"open trace pipe {candidate}: {exc.strerror}") from exc
        else:
            raise NotSupportedError(
                "open trace pipe: tracefs is not mounted "
                "(mount it with: mount -t tracefs tracefs /sys/kernel/tracing)",
                feature="tracefs")
        self._partial = b""
        self._closed = False

    def fileno(self) -> int:
        return self._fd

    def read(self) -> list[str]:
        if self._closed:
            raise EunomiaError("read trace pipe: reader is closed")
        parts = [self._partial]
        while True:
            try:
                data = os.read(self._fd, 65536)
            except BlockingIOError:
                break
            except OSError as exc:
                if exc.errno == errno.EINTR:
                    continue
                raise EunomiaError(f"read trace pipe: {exc.strerror}") from exc
            if not data:
                break
            parts.append(data)
        text = b"".join(parts)
        complete, _, self._partial = text.rpartition(b"\n")
        if not complete:
            return []
        return complete.decode("utf-8", "replace").split("\n")

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        os.close(self._fd)


# Decoding a batch allocates and frees thousands of small objects (JSON lines above all);
# glibc then trims the top of the heap and the next batch page-faults it back in, about
# one fault per event on this VM: 2.3 us instead of 0.37 us per JSON line. Keeping up to
# this much freed heap (mallopt M_TRIM_THRESHOLD) removes that.
KEEP_FREED_HEAP = 64 << 20


class Poller(Closing):
    """Waits on many sources with one epoll and reads those that have data.

    Ring buffers are also checked on every poll without an epoll event, because a
    producer using ``BPF_RB_NO_WAKEUP`` never wakes the consumer: there a poll timeout
    acts as the timer. The check compares two positions and costs nothing when idle.
    """

    def __init__(self, sources: Iterable[EventSource], *, min_interval_ms: float = 1.0) -> None:
        self.sources: tuple[EventSource, ...] = tuple(sources)
        self.min_interval_ms = min_interval_ms
        self._last_batch = 0.0
        self._epoll = select.epoll()
        self._by_fd: dict[int, EventSource] = {}
        try:
            for source in self.sources:
                fd = source.fileno()
                self._epoll.register(fd, select.EPOLLIN)
                self._by_fd[fd] = source
        except OSError as exc:
            self._epoll.close()
            raise EunomiaError(f"watch event source: {exc.strerror}") from exc
        self._rings = [s for s in self.sources if isinstance(s, RingBufferReader)]
        # A perf buffer is an epoll fd of its own; nested in ours it reports only
        # wake-ups that come after registration (events already waiting stayed
        # unseen in a test), so it is consumed on every poll: cheap when empty.
        self._perf = [s for s in self.sources if isinstance(s, PerfBufferReader)]
        _libbpf.keep_freed_heap(KEEP_FREED_HEAP)

    def poll(self, timeout_ms: int = -1) -> list[tuple[EventSource, Any]]:
        """Return ``(source, batch)`` for every source with data, waiting up to the timeout.

        With ``min_interval_ms``, a poll that follows one which returned data first
        sleeps out the rest of that interval (unless a ring buffer read stopped at its
        ``max_batch``),
        so that a busy producer is read in large batches (few wake-ups, little CPU)
        instead of a few records per system call: at 3 M events/s, 5 % of a core with
        1 ms instead of 100 % with none.
        """
        if self.min_interval_ms and self._last_batch and not any(
                ring.more for ring in self._rings):
            wait = self._last_batch + self.min_interval_ms / 1000 - time.monotonic()
            if wait > 0:
                time.sleep(wait)
        try:
            ready = self._epoll.poll(timeout_ms / 1000 if timeout_ms >= 0 else -1)
        except InterruptedError:
            ready = []
        ready_sources = [self._by_fd[fd] for fd, _ in ready]
        for ring in self._rings:
            if ring not in ready_sources and ring.pending():
                ready_sources.append(ring)
        ready_sources += [perf for perf in self._perf if perf not in ready_sources]
        batches: list[tuple[EventSource, Any]] = []
        for source in ready_sources:
            batch = source.read()
            if len(batch):
                batches.append((source, batch))
        self._last_batch = time.monotonic() if batches else 0.0
        return batches

    def close(self) -> None:
        self._epoll.close()  # idempotent in Python; sources belong to the caller

