"""Attach by section name through libbpf's auto-attach (``bpf_program__attach``)."""

from __future__ import annotations

import errno

from .._libbpf import BpfProgram
from ..errors import AttachError
from ._link import LibbpfLink

__all__ = ["attach_by_section", "attach_user_probe", "target_of"]


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


def attach_user_probe(prog: BpfProgram, kind: str, section: str) -> LibbpfLink:
    """uprobe/usdt auto-attach; ENOENT is told apart: no such binary, or no such symbol
    or probe in it. ``<binary>:...`` without a '/' is looked up in $PATH, as libbpf does."""
    import os
    import shutil

    try:
        return attach_by_section(prog, kind, section)
    except AttachError as exc:
        if exc.errno != errno.ENOENT:
            raise
        binary, _, what = target_of(section).lstrip("/").partition(":")
        binary = "/" + binary if target_of(section).startswith("/") else binary
        found = binary if "/" in binary else shutil.which(binary)
        if not found or not os.path.exists(found):
            where = "" if "/" in binary else " (looked in $PATH)"
            raise AttachError(f"attach program {prog.name}: {kind} target binary "
                              f"'{binary}' not found{where}", errno=exc.errno) from None
        raise AttachError(f"attach program {prog.name}: {found} has no {kind} target "
                          f"'{what}'", errno=exc.errno) from None
