"""Which network interface an xdp or tc program goes to."""

from __future__ import annotations

from typing import Any

from .._libbpf import if_nametoindex
from ..errors import ArgumentError
from ._link import AttachOptions

__all__ = ["resolve_ifindex"]


def resolve_ifindex(program: str, meta_ifindex: Any, options: AttachOptions) -> int:
    """The run-time option wins over the package meta; a missing interface is an error."""
    if options.ifindex is not None:
        return options.ifindex
    if options.ifname is not None:
        return if_nametoindex(options.ifname)
    if isinstance(meta_ifindex, int) and not isinstance(meta_ifindex, bool) and meta_ifindex > 0:
        return meta_ifindex
    raise ArgumentError(f"attach program {program}: no network interface given "
                        f"(set an ifindex or interface name)")
