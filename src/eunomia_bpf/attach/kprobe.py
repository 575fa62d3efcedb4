"""Kernel probes: ``kprobe/``, ``kretprobe/``, ``ksyscall/``, ``kprobe.multi/``.

Kernels built without ``CONFIG_KPROBES`` refuse them at attach time (ENOENT, or
EOPNOTSUPP for kprobe.multi); that becomes a :class:`NotSupportedError` naming kprobes.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Mapping
from typing import Any

from .._libbpf import BpfProgram
from ..errors import AttachError, NotSupportedError
from ._auto import attach_by_section
from ._link import AttachOptions, Link

__all__ = ["KINDS", "attach", "kernel_has_kprobes"]

KINDS = {
    "kprobe": "kprobe",
    "kretprobe": "kretprobe",
    "ksyscall": "ksyscall",
    "kretsyscall": "kretsyscall",
    "kprobe.multi": "kprobe.multi",
    "kretprobe.multi": "kprobe.multi",
}


def kernel_has_kprobes() -> bool:
    """The kprobe PMU or the legacy tracefs interface exists."""
    return any(os.path.exists(p) for p in (
        "/sys/bus/event_source/devices/kprobe",
        "/sys/kernel/tracing/kprobe_events",
        "/sys/kernel/debug/tracing/kprobe_events",
    ))


def attach(prog: BpfProgram, section: str, params: Mapping[str, Any],
           options: AttachOptions) -> list[Link]:
    kind = KINDS[section.partition("/")[0]]
    try:
        return [attach_by_section(prog, kind, section)]
    except AttachError as exc:
        if kind == "kprobe.multi" and exc.errno == errno.EOPNOTSUPP:
            raise NotSupportedError(
                f"attach program {prog.name}: this kernel does not support kprobe.multi "
                f"(kprobe.multi attach returned EOPNOTSUPP)", feature="kprobe.multi") from None
        if exc.errno == errno.ENOENT and not kernel_has_kprobes():
            raise NotSupportedError(
                f"attach program {prog.name}: this kernel does not support kprobes "
                f"({kind} attach returned ENOENT)", feature="kprobe") from None
        raise
