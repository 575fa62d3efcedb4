"""Text histograms in the style of BCC / libbpf-tools ``print_log2_hist``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

STARS = 40


def _bar(count: int, peak: int) -> str:
    filled = 0 if peak <= 0 else min(STARS, count * STARS // peak)
    return "*" * filled + ("+" if count > 0 and filled == 0 else "")


def log2_histogram(slots: Sequence[int], unit: str) -> list[str]:
    """Bucket i counts values in [2^i, 2^(i+1)) (bucket 0: 0 and 1)."""
    return _render([((1 << (i + 1)) >> 1 if i else 0, (1 << (i + 1)) - 1)
                    for i in range(len(slots))], slots, unit)


def linear_histogram(slots: Sequence[int], unit: str, *, base: int = 0,
                     step: int = 1) -> list[str]:
    return _render([(base + step * i, base + step * (i + 1) - 1) for i in range(len(slots))],
                   slots, unit)


def _render(ranges: list[tuple[int, int]], slots: Sequence[int], unit: str) -> list[str]:
    last = max((i for i, v in enumerate(slots) if v), default=-1)
    if last < 0:
        return [f"{unit:>20} : count    distribution", "(no values)"]
    peak = max(slots[:last + 1])
    width = max(len(str(ranges[last][1])), 5)
    lines = [f"{unit:>{2 * width + 4}} : count    distribution"]
    for (low, high), count in zip(ranges[:last + 1], slots[:last + 1]):
        lines.append(f"{low:>{width}} -> {high:<{width}} : {count:<8} "
                     f"|{_bar(count, peak):<{STARS}}|")
    return lines


def describe_key(key: Any) -> str:
    """``key = 3`` or ``comm = bash, pid = 42`` for struct keys."""
    if isinstance(key, Mapping):
        return ", ".join(f"{k} = {v}" for k, v in key.items())
    return f"key = {key}"
