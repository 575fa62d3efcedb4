"""Socket filters: loaded but not attached, since no socket is the natural target."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from .._libbpf import BpfProgram
from ._link import AttachOptions, Link

__all__ = ["KINDS", "attach"]

logger = logging.getLogger("eunomia_bpf.attach")

KINDS = {"socket": "socket"}


def attach(prog: BpfProgram, section: str, params: Mapping[str, Any],
           options: AttachOptions) -> list[Link]:
    logger.info("program %s is a socket filter: loaded (fd %d) but not attached, "
                "since it has no natural target socket", prog.name, prog.fd)
    return []
