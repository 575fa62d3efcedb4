"""BPF trampoline programs: ``fentry/``, ``fexit/``, ``fmod_ret/``, ``lsm/``, ``freplace/``.

Some kernels refuse them already at load (EPERM with an empty verifier log); the loader
asks :func:`load_refusal` to turn that into a :class:`NotSupportedError`.
"""

from __future__ import annotations

import errno
from collections.abc import Mapping
from typing import Any

from .._libbpf import BpfProgram
from ..errors import NotSupportedError
from ._auto import attach_by_section
from ._link import AttachOptions, Link

__all__ = ["KINDS", "attach", "load_refusal"]

KINDS = {
    "fentry": "fentry/fexit", "fexit": "fentry/fexit", "fmod_ret": "fentry/fexit",
    "fentry.s": "fentry/fexit", "fexit.s": "fentry/fexit", "fmod_ret.s": "fentry/fexit",
    "lsm": "BPF LSM", "lsm.s": "BPF LSM", "lsm_cgroup": "BPF LSM",
    "freplace": "freplace",
}


def load_refusal(program: str, section: str, error_number: int,
                 log: str) -> NotSupportedError | None:
    """The NotSupportedError for a trampoline program the kernel refused, if that is it."""
    feature = KINDS.get(section.partition("/")[0])
    if feature is None or error_number != errno.EPERM or log.strip():
        return None
    return NotSupportedError(
        f"load program {program}: this kernel does not allow {feature} programs "
        f"(BPF trampolines refused: EPERM)", feature=feature)


def attach(prog: BpfProgram, section: str, params: Mapping[str, Any],
           options: AttachOptions) -> list[Link]:
    return [attach_by_section(prog, KINDS[section.partition("/")[0]], section)]
