"""eunomia-bpf: run CO-RE eBPF packages anywhere and see their events decoded.

The public API is what ``__all__`` lists; everything else is internal. Importing this
package is cheap: libbpf, the HTTP stack and the build tools load only when used.
"""

import logging as _logging

from .errors import (
    ArgumentError,
    AttachError,
    BTFError,
    DecodeError,
    EunomiaError,
    LibbpfError,
    LoadError,
    NotSupportedError,
    PackageError,
    ResolveError,
    VerifierError,
)
from .maps import Map, open_pinned
from .package import Package, dump_package, read_package
from .runner import Batch, Program, open_program
from .spec import ExportSpec, MapSpec, ObjectSpec, ProgramSpec, VariableSpec

__version__ = "0.1.0"

# A library does not print: applications choose where our log (and libbpf's) goes.
_logging.getLogger("eunomia_bpf").addHandler(_logging.NullHandler())

__all__ = [
    "ArgumentError",
    "AttachError",
    "BTFError",
    "Batch",
    "DecodeError",
    "EunomiaError",
    "ExportSpec",
    "LibbpfError",
    "LoadError",
    "Map",
    "MapSpec",
    "NotSupportedError",
    "ObjectSpec",
    "Package",
    "PackageError",
    "Program",
    "ProgramSpec",
    "ResolveError",
    "VariableSpec",
    "VerifierError",
    "__version__",
    "dump_package",
    "open_pinned",
    "open_program",
    "read_package",
]
