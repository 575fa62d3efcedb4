"""Where decoded records go: an aligned text table, JSON lines or folded stacks (pure;
writes to a stream)."""

from ._sink import RecordSink, Stream
from .folded import FoldedSink, FoldedStacks
from .jsonl import JsonLinesSink
from .text import TextTableSink

__all__ = ["FoldedSink", "FoldedStacks", "JsonLinesSink", "RecordSink", "Stream",
           "TextTableSink"]
