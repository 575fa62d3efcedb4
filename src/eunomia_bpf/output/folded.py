"""Folded stacks (Brendan Gregg's format), the input of ``flamegraph.pl`` and speedscope.

One line per distinct stack, ``comm;outermost;...;innermost COUNT``: the user frames,
then the kernel frames entered from them. Samples are counted over the whole run and
written when the sink closes, or every ``interval`` seconds (then counting starts over).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from ._sink import Stream

if TYPE_CHECKING:
    from ..sampler import MapSample

# stack columns in the order they nest: a user stack calls into the kernel
DEFAULT_STACK_COLUMNS = ("ustack", "user_stack", "stack", "kstack", "kern_stack")


def _frame(name: str) -> str:
    # ';' separates frames and the last ' ' the count: keep them out of names
    return name.replace(";", ":").replace("\n", " ") or "[unknown]"


class FoldedStacks:
    """Counts of stacks (pure)."""

    def __init__(self) -> None:
        self.counts: Counter[tuple[str, ...]] = Counter()

    def add(self, frames: Iterable[str], count: int = 1) -> None:
        """Count one stack given outermost frame first."""
        self.counts[tuple(_frame(f) for f in frames)] += count

    def add_sample(self, comm: str, stacks: Sequence[Sequence[str]]) -> None:
        """One sample: the process name and its stacks (each innermost first, as the
        event columns hold them), outer stacks first (user before kernel)."""
        frames = [comm]
        for stack in stacks:
            frames.extend(reversed(stack))
        self.add(frames)

    def lines(self) -> list[str]:
        return [f"{';'.join(frames)} {count}" for frames, count in sorted(self.counts.items())]

    def clear(self) -> None:
        self.counts.clear()

    def __len__(self) -> int:
        return sum(self.counts.values())


class FoldedSink:
    """A record sink that aggregates stack columns instead of printing events.

    ``comm`` (or the source's name) is the root frame; ``stack_columns`` lists the stack
    columns to join, outermost first; columns absent from a batch are skipped.
    """

    def __init__(self, stream: Stream, *, interval: float | None = None,
                 stack_columns: Sequence[str] = DEFAULT_STACK_COLUMNS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.stream = stream
        self.interval = interval
        self.stack_columns = tuple(stack_columns)
        self.stacks = FoldedStacks()
        self._clock = clock
        self._next = None if interval is None else clock() + interval

    def records(self, source: str, names: Sequence[str], columns: dict[str, list[Any]],
                count: int) -> None:
        present = [columns[c] for c in self.stack_columns if c in columns]
        comms = columns.get("comm") or [source] * count
        for i in range(count):
            self.stacks.add_sample(str(comms[i]), [col[i] or () for col in present])

    def lines(self, lines: Sequence[str]) -> None:
        """Text lines have no stacks."""

    def samples(self, sample: MapSample) -> None:
        """Sampled maps have no stacks."""

    def flush(self) -> None:
        if self._next is not None and self.interval is not None \
                and self._clock() >= self._next:
            self._next = self._clock() + self.interval
            self.write()
        self.stream.flush()

    def write(self) -> None:
        """Write the stacks counted so far and start over."""
        out = self.stacks.lines()
        self.stacks.clear()
        if out:
            out.append("")
            self.stream.write("\n".join(out).encode())
        self.stream.flush()

    def close(self) -> None:
        self.write()
