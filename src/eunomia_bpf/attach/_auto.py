"""Attach by section name through libbpf's auto-attach (``bpf_program__attach``)."""

from __future__ import annotations

import errno

from .._libbpf import BpfProgram
from ..errors import AttachError
from ._link import LibbpfLink

__all__ = ["attach_by_section", "target_of"]


def target_of(section: str) -> str:
    """The part of a section after the kind: "tp/sched/sched_switch" -> "sched/sched_switch"."""
    return section.partition("/")[2]


def attach_by_section(prog: BpfProgram, kind: str, section: str) -> LibbpfLink:
    """``bpf_program__attach``; a section that names no target fails with a clear cause."""
    try:
        raw = prog.attach()
    except AttachError as exc:
        if exc.errno == errno.EOPNOTSUPP:
            raise AttachError(f"attach program {prog.name}: section '{section}' names no "
                              f"target that libbpf can attach {kind} to",
                              errno=exc.errno) from None
        raise
    return LibbpfLink(prog.name, kind, raw, target_of(section))
