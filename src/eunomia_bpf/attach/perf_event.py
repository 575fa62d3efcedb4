"""``perf_event``: sample every online CPU with a software cpu-clock event.

Meta params: ``sample_freq`` (Hz, default 50) or ``sample_period`` (ns of CPU time).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from .._libbpf import BpfLink, BpfProgram, online_cpus, perf_event_open_cpu_clock
from ._link import AttachOptions, Link, MultiLink, meta_int

__all__ = ["DEFAULT_SAMPLE_FREQ", "KINDS", "attach"]

KINDS = {"perf_event": "perf_event"}
DEFAULT_SAMPLE_FREQ = 50


def _positive_int(params: Mapping[str, Any], key: str, program: str) -> int | None:
    value = params.get(key)
    return None if value is None else meta_int(value, key, program, minimum=1)


def attach(prog: BpfProgram, section: str, params: Mapping[str, Any],
           options: AttachOptions) -> list[Link]:
    period = _positive_int(params, "sample_period", prog.name)
    freq = _positive_int(params, "sample_freq", prog.name) or DEFAULT_SAMPLE_FREQ
    raws: list[BpfLink] = []
    try:
        for cpu in online_cpus():
            fd = perf_event_open_cpu_clock(cpu, sample_freq=freq, sample_period=period)
            try:
                raws.append(prog.attach_perf_event(fd))  # the link now owns fd
            except BaseException:
                os.close(fd)
                raise
    except BaseException:
        for raw in raws:
            raw.destroy()
        raise
    rate = f"period {period}" if period else f"{freq} Hz"
    return [MultiLink(prog.name, "perf_event", raws, f"cpu-clock {rate} on {len(raws)} cpus")]
