"""``Link``: one attachment of a program, detached by an idempotent ``close()``."""

from __future__ import annotations

import abc
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from .._closing import Closing
from .._libbpf import BpfLink
from ..errors import ArgumentError

__all__ = ["AttachOptions", "CallbackLink", "LibbpfLink", "Link", "MultiLink", "meta_int"]

logger = logging.getLogger("eunomia_bpf.attach")


@dataclass(frozen=True)
class AttachOptions:
    """Run-time attach targets that override what the package's meta says."""

    ifindex: int | None = None   # xdp / tc interface
    ifname: str | None = None    # same, by name (ifindex wins when both are given)
    cgroup: str | None = None    # cgroup2 directory for cgroup_skb & co.


class Link(Closing):
    """One attachment of one program. ``close()`` detaches it; calling it again is a no-op."""

    def __init__(self, program: str, kind: str, target: str = "") -> None:
        self.program = program
        self.kind = kind
        self.target = target
        self._closed = False
        self._lock = threading.Lock()

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._release()

    @abc.abstractmethod
    def _release(self) -> None:
        """Detach, once: each kind of link knows how."""

    def __repr__(self) -> str:
        state = "closed" if self._closed else "attached"
        target = f" -> {self.target}" if self.target else ""
        return f"<{type(self).__name__} {self.kind} {self.program}{target} {state}>"


class LibbpfLink(Link):
    """A ``struct bpf_link`` (tracepoints, probes, iterators, xdp/cgroup links, ...)."""

    def __init__(self, program: str, kind: str, raw: BpfLink, target: str = "") -> None:
        super().__init__(program, kind, target)
        self._raw = raw

    @property
    def fd(self) -> int:
        return self._raw.fd

    def _release(self) -> None:
        self._raw.destroy()


class MultiLink(Link):
    """Several libbpf links that belong together (e.g. one perf event per CPU)."""

    def __init__(self, program: str, kind: str, raws: Sequence[BpfLink],
                 target: str = "") -> None:
        super().__init__(program, kind, target)
        self._raws = list(raws)

    def __len__(self) -> int:
        return len(self._raws)

    def _release(self) -> None:
        first: Exception | None = None
        for raw in self._raws:
            try:
                raw.destroy()
            except Exception as exc:  # noqa: BLE001 - every part must be released
                first = first or exc
        if first is not None:
            raise first


class CallbackLink(Link):
    """An attachment undone by a function (netlink tc filters, xdp by flags)."""

    def __init__(self, program: str, kind: str, detach: Callable[[], None],
                 target: str = "") -> None:
        super().__init__(program, kind, target)
        self._detach = detach

    def _release(self) -> None:
        self._detach()


def meta_int(value: Any, what: str, program: str, *, minimum: int = 0) -> int:
    """An integer attach parameter from the package meta (``tcopts.handle``, xdp
    ``flags``, ``sample_freq``...), checked: JSON gives anything."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        kind = "positive" if minimum == 1 else "non-negative" if minimum == 0 \
            else f">= {minimum}"
        raise ArgumentError(f"attach program {program}: {what} must be a {kind} "
                            f"integer, not {value!r}")
    return value
