"""USDT probes: ``usdt/<binary>:<provider>:<name>`` (needs libbpf's usdt.bpf.h in the program)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .._libbpf import BpfProgram
from ._auto import attach_user_probe
from ._link import AttachOptions, Link

__all__ = ["KINDS", "attach"]

KINDS = {"usdt": "usdt", "usdt.s": "usdt"}


def attach(prog: BpfProgram, section: str, params: Mapping[str, Any],
           options: AttachOptions) -> list[Link]:
    return [attach_user_probe(prog, "usdt", section)]
