"""Tracepoints: ``tp/<category>/<name>``, ``raw_tp/<name>``, ``tp_btf/<name>``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .._libbpf import BpfProgram
from ._auto import attach_by_section
from ._link import AttachOptions, Link

__all__ = ["KINDS", "attach"]

KINDS = {
    "tp": "tracepoint",
    "tracepoint": "tracepoint",
    "raw_tp": "raw_tp",
    "raw_tracepoint": "raw_tp",
    "raw_tp.w": "raw_tp",
    "raw_tracepoint.w": "raw_tp",
    "tp_btf": "tp_btf",
}


def attach(prog: BpfProgram, section: str, params: Mapping[str, Any],
           options: AttachOptions) -> list[Link]:
    kind = KINDS[section.partition("/")[0]]
    return [attach_by_section(prog, kind, section)]
