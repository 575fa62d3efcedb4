"""Every error the library raises on purpose.

The tree::

    EunomiaError                  anything this project raises on purpose
    ├── PackageError              a package file is malformed, oversized or inconsistent
    ├── BTFError                  BTF bytes cannot be parsed or a type is missing
    ├── DecodeError               bytes do not fit the layout of a type
    ├── ArgumentError             a package argument has a bad name or value
    ├── ResolveError              a package name / path / URL cannot be found or fetched
    ├── LibbpfError               a libbpf call failed (carries ``errno``)
    │   ├── LoadError             opening or loading a BPF object failed
    │   │   └── VerifierError     the kernel verifier refused a program (keeps the log)
    │   └── AttachError           a program could not be attached
    ├── NotSupportedError         the running kernel lacks a feature the package needs
    │
    │   defined beside the code that raises them (not imported by `ecli run`):
    ├── build.BuildError          building a package failed
    │   ├── build.ToolNotFoundError   clang / llvm-strip / bpftool / libbpf headers missing
    │   └── build.CompileError        clang refused the source (keeps its diagnostics)
    ├── ebpm.manifest.ManifestError   ebpm.toml is malformed
    ├── remote.RemoteError        a request to eunomiad failed (carries the HTTP status)
    └── metrics_config.MetricsConfigError  a --metrics-config file is malformed

Messages follow "verb object: cause", lowercase, so that the CLI can print them as one
line. Nothing here prints or exits; the CLI decides how to show an error.
"""

from __future__ import annotations

import errno as _errno
import os

__all__ = [
    "ArgumentError",
    "AttachError",
    "BTFError",
    "DecodeError",
    "EunomiaError",
    "LibbpfError",
    "LoadError",
    "NotSupportedError",
    "PackageError",
    "ResolveError",
    "VerifierError",
]


class EunomiaError(Exception):
    """Base class of every error raised on purpose by eunomia-bpf."""


class PackageError(EunomiaError):
    """A package is malformed: bad JSON, base64, zlib, size or schema."""


class BTFError(EunomiaError):
    """BTF data cannot be parsed, or a requested type does not exist."""


class DecodeError(EunomiaError):
    """Bytes cannot be decoded (or a value encoded) with a BTF layout."""


class ArgumentError(EunomiaError):
    """A package argument is unknown or its value does not fit its type."""


class ResolveError(EunomiaError):
    """A package reference (path, name, URL, stdin) cannot be resolved."""


class NotSupportedError(EunomiaError):
    """The running kernel lacks a feature the package needs (names the feature)."""

    def __init__(self, message: str, *, feature: str = "") -> None:
        super().__init__(message)
        self.feature = feature


class LibbpfError(EunomiaError):
    """A libbpf call failed; ``errno`` is the positive error number."""

    def __init__(self, message: str, *, errno: int = 0) -> None:
        if errno:
            name = _errno.errorcode.get(errno, str(errno))
            message = f"{message}: {os.strerror(errno)} ({name})"
        super().__init__(message)
        self.errno = errno


class LoadError(LibbpfError):
    """Opening or loading a BPF object failed."""


class AttachError(LibbpfError):
    """Attaching a program failed."""


class VerifierError(LoadError):
    """The verifier refused a program. ``str()`` is a one-line summary; ``log`` is all."""

    def __init__(self, program: str, log: str, *, errno: int = 0) -> None:
        self.program = program
        self.log = log
        super().__init__(f"load program {program}: verifier rejected it: {self.summary}",
                         errno=0)
        self.errno = errno

    @property
    def summary(self) -> str:
        """The most telling line of the verifier log (the last non-statistics one)."""
        lines = [ln.strip() for ln in self.log.splitlines() if ln.strip()]
        for line in reversed(lines):
            if line.startswith(("processed ", "verification time", "stack depth", "--",
                                "libbpf:", "Validating", "max_states")):
                continue
            return line
        return "no verifier log"
