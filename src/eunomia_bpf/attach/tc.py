"""tc (clsact) classifiers, attached through netlink.

Meta params (public ecc format)::

    "tchook": {"ifindex": 1, "attach_point": "BPF_TC_INGRESS" | "BPF_TC_EGRESS"},
    "tcopts": {"handle": 1, "priority": 1}

The clsact qdisc is created when missing; on close the filter is detached and the qdisc
removed only if this attachment created it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from .._libbpf import BpfProgram, TcHook, tc_attach, tc_detach, tc_hook_create, tc_hook_destroy
from ..errors import ArgumentError
from ._link import AttachOptions, Link, meta_int
from ._netdev import resolve_ifindex

__all__ = ["KINDS", "TcLink", "attach"]

logger = logging.getLogger("eunomia_bpf.attach")

KINDS = {"tc": "tc", "classifier": "tc"}
_ATTACH_POINTS = {"BPF_TC_INGRESS": 1, "BPF_TC_EGRESS": 2, "ingress": 1, "egress": 2}


class TcLink(Link):
    def __init__(self, program: str, hook: TcHook, handle: int, priority: int,
                 created_hook: bool) -> None:
        point = "ingress" if hook.attach_point == 1 else "egress"
        super().__init__(program, "tc", f"ifindex {hook.ifindex} {point} "
                                         f"handle {handle} priority {priority}")
        self.hook = hook
        self.handle = handle
        self.priority = priority
        self.created_hook = created_hook

    def _release(self) -> None:
        try:
            tc_detach(self.hook, self.handle, self.priority)
        finally:
            if self.created_hook:
                tc_hook_destroy(self.hook)


def attach(prog: BpfProgram, section: str, params: Mapping[str, Any],
           options: AttachOptions) -> list[Link]:
    hook_meta = params.get("tchook") or {}
    opts_meta = params.get("tcopts") or {}
    if not isinstance(hook_meta, Mapping) or not isinstance(opts_meta, Mapping):
        raise ArgumentError(f"attach program {prog.name}: tchook and tcopts must be objects")
    point_name = hook_meta.get("attach_point", "BPF_TC_INGRESS")
    point = _ATTACH_POINTS.get(point_name) if isinstance(point_name, str) else None
    if point is None:
        raise ArgumentError(f"attach program {prog.name}: unknown tc attach_point "
                            f"{point_name!r} (use BPF_TC_INGRESS or BPF_TC_EGRESS)")
    ifindex = resolve_ifindex(prog.name, hook_meta.get("ifindex"), options)
    handle = meta_int(opts_meta.get("handle", 1), "tcopts.handle", prog.name)
    priority = meta_int(opts_meta.get("priority", 1), "tcopts.priority", prog.name)
    hook = TcHook(ifindex, point)
    created = tc_hook_create(hook)
    try:
        handle, priority = tc_attach(hook, prog.fd, handle, priority)
    except BaseException:
        if created:
            tc_hook_destroy(hook)
        raise
    return [TcLink(prog.name, hook, handle, priority, created)]
