"""User-space probes: ``uprobe/<binary>:<function>[+offset]`` and ``uretprobe/...``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .._libbpf import BpfProgram
from ._auto import attach_user_probe
from ._link import AttachOptions, Link

__all__ = ["KINDS", "attach"]

KINDS = {"uprobe": "uprobe", "uretprobe": "uretprobe", "uprobe.s": "uprobe",
         "uretprobe.s": "uretprobe", "uprobe.multi": "uprobe", "uretprobe.multi": "uretprobe"}


def attach(prog: BpfProgram, section: str, params: Mapping[str, Any],
           options: AttachOptions) -> list[Link]:
    kind = KINDS[section.partition("/")[0]]
    return [attach_user_probe(prog, kind, section)]
