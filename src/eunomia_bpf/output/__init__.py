"""Where decoded records go: an aligned text table or JSON lines (pure; writes to a stream)."""

from ._sink import RecordSink, Stream
from .jsonl import JsonLinesSink
from .text import TextTableSink

__all__ = ["JsonLinesSink", "RecordSink", "Stream", "TextTableSink"]
