"""XDP: attach to one interface.

Meta params (as written by the public ecc): ``ifindex``, ``flags`` and ``xdpopts``
(``{"old_prog_fd": ...}``; ``flags`` is also accepted inside it). Without flags the
attachment is a bpf_link, which the kernel drops when we exit; with flags (e.g. 2 for
SKB mode) it goes through netlink and is detached on close.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .._libbpf import BpfProgram, xdp_attach, xdp_detach
from ._link import AttachOptions, CallbackLink, LibbpfLink, Link, meta_int
from ._netdev import resolve_ifindex

__all__ = ["KINDS", "attach"]

KINDS = {"xdp": "xdp", "xdp.frags": "xdp"}


def _flags(params: Mapping[str, Any], program: str) -> int:
    opts = params.get("xdpopts") or {}
    flags = params.get("flags", opts.get("flags", 0) if isinstance(opts, Mapping) else 0)
    return meta_int(flags, "xdp flags", program)


def attach(prog: BpfProgram, section: str, params: Mapping[str, Any],
           options: AttachOptions) -> list[Link]:
    ifindex = resolve_ifindex(prog.name, params.get("ifindex"), options)
    flags = _flags(params, prog.name)
    target = f"ifindex {ifindex}"
    if not flags:
        return [LibbpfLink(prog.name, "xdp", prog.attach_xdp(ifindex), target)]
    xdp_attach(ifindex, prog.fd, flags)
    return [CallbackLink(prog.name, "xdp", lambda: xdp_detach(ifindex, flags),
                         f"{target} flags {flags:#x}")]
