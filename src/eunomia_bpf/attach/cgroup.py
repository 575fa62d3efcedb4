"""cgroup programs (``cgroup_skb/ingress``, ``cgroup/sock``, ...): attach to a cgroup2 directory.

The directory is the run-time ``cgroup`` option, else the cgroup2 root
(``/sys/fs/cgroup/unified`` on hybrid hosts, else ``/sys/fs/cgroup`` when it is cgroup2).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from .._libbpf import BpfProgram
from ..errors import ArgumentError, NotSupportedError
from ._link import AttachOptions, LibbpfLink, Link

__all__ = ["KINDS", "attach", "cgroup2_root"]

KINDS = {"cgroup_skb": "cgroup", "cgroup": "cgroup", "sockops": "cgroup",
         "cgroup.s": "cgroup"}
_CANDIDATES = ("/sys/fs/cgroup/unified", "/sys/fs/cgroup")


def cgroup2_root() -> str | None:
    """The preferred cgroup2 mount point, from /proc/self/mountinfo."""
    mounts: set[str] = set()
    try:
        with open("/proc/self/mountinfo") as f:
            for line in f:
                left, _, right = line.partition(" - ")
                if right.split(" ", 1)[0] == "cgroup2":
                    mounts.add(left.split(" ")[4])
    except OSError:
        return None
    for candidate in _CANDIDATES:
        if candidate in mounts:
            return candidate
    return min(mounts) if mounts else None


def attach(prog: BpfProgram, section: str, params: Mapping[str, Any],
           options: AttachOptions) -> list[Link]:
    path = options.cgroup or params.get("cgroup") or cgroup2_root()
    if not path:
        raise NotSupportedError(f"attach program {prog.name}: no cgroup2 hierarchy is "
                                f"mounted", feature="cgroup2")
    try:
        fd = os.open(str(path), os.O_RDONLY | os.O_DIRECTORY)
    except OSError as exc:
        raise ArgumentError(f"attach program {prog.name}: open cgroup {path}: "
                            f"{exc.strerror}") from None
    try:
        raw = prog.attach_cgroup(fd)
    finally:
        os.close(fd)  # the link holds its own reference to the cgroup
    return [LibbpfLink(prog.name, "cgroup", raw, str(path))]
