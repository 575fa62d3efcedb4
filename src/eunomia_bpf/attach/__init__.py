"""Attaching loaded programs, one module per attach kind.

:func:`attach_program` picks the module from the section name ("tp/...", "uprobe/...",
"xdp", "tc", "perf_event", ...). Every attachment is a :class:`Link` with an idempotent
``close()``; a kernel that lacks the feature gives a :class:`~eunomia_bpf.errors.NotSupportedError`
whose message names it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import ModuleType
from typing import Any

from .._libbpf import BpfProgram
from . import (
    cgroup,
    iterator,
    kprobe,
    perf_event,
    socket_filter,
    tc,
    tracepoint,
    trampoline,
    uprobe,
    usdt,
    xdp,
)
from ._auto import attach_by_section
from ._link import AttachOptions, CallbackLink, LibbpfLink, Link, MultiLink
from .iterator import IterLink
from .tc import TcLink
from .trampoline import load_refusal

__all__ = [
    "AttachOptions",
    "CallbackLink",
    "IterLink",
    "LibbpfLink",
    "Link",
    "MultiLink",
    "TcLink",
    "attach_program",
    "is_attachable",
    "load_refusal",
]

_Attach = Callable[[BpfProgram, str, Mapping[str, Any], AttachOptions], list[Link]]
_MODULES: tuple[ModuleType, ...] = (tracepoint, iterator, uprobe, usdt, kprobe, perf_event, xdp,
                                    tc, cgroup, socket_filter, trampoline)
_BY_PREFIX: dict[str, _Attach] = {
    prefix: module.attach for module in _MODULES for prefix in module.KINDS
}
# Kinds attached elsewhere (struct_ops: by map) or never (no target at all).
_NOT_ATTACHED = frozenset({"struct_ops", "struct_ops.s", "syscall", "sk_lookup", "flow_dissector",
                           "sk_msg", "sk_skb", "lwt_in", "lwt_out", "lwt_xmit", "lwt_seg6local"})


def _prefix(section: str) -> str:
    return section.partition("/")[0]


def is_attachable(section: str) -> bool:
    """True when :func:`attach_program` knows how to attach this section's kind."""
    return _prefix(section) in _BY_PREFIX


def attach_program(prog: BpfProgram, section: str, params: Mapping[str, Any] | None = None,
                   options: AttachOptions | None = None) -> list[Link]:
    """Attach one loaded program by its section; [] when it has no attach target."""
    attach = _BY_PREFIX.get(_prefix(section))
    params = params or {}
    options = options or AttachOptions()
    if attach is not None:
        return attach(prog, section, params, options)
    if _prefix(section) in _NOT_ATTACHED:
        return []
    return [attach_by_section(prog, _prefix(section), section)]
