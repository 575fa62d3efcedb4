"""Errors of the build tools (kept here until the build grows into the CLI)."""

from __future__ import annotations

from ..errors import EunomiaError

__all__ = ["BuildError", "CompileError", "ToolNotFoundError"]


class BuildError(EunomiaError):
    """Building a package failed: compiling, stripping or generating its meta."""


class ToolNotFoundError(BuildError):
    """A build tool (clang, llvm-strip) is not installed; the message says how to get it."""

    def __init__(self, message: str, *, tool: str) -> None:
        super().__init__(message)
        self.tool = tool


class CompileError(BuildError):
    """The compiler refused the source; ``diagnostics`` holds all it printed."""

    def __init__(self, source: str, diagnostics: str) -> None:
        self.source = source
        self.diagnostics = diagnostics
        first = next((ln for ln in diagnostics.splitlines() if "error:" in ln),
                     diagnostics.strip().splitlines()[0] if diagnostics.strip() else "")
        super().__init__(f"compile {source}: {first or 'clang failed'}")

    def __str__(self) -> str:
        # The one-line summary first, then every diagnostic: the user needs them all.
        return f"{self.args[0]}\n{self.diagnostics.rstrip()}" if self.diagnostics else self.args[0]
