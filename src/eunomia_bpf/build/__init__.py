"""Build packages from BPF C sources: compile, strip, generate the meta, write the package.

The minimal builder the bundled examples are made with; ``ecli build`` (doc comments,
``eunomia.toml``) grows on top of it. Importing this package runs nothing: clang is looked
up only when :func:`compile_object` is called.

    obj = compile_object(Path("opensnoop.bpf.c"))
    meta = generate_meta(obj, obj_name="opensnoop_bpf")
    data = dump_package(obj, meta)          # from eunomia_bpf.package
"""

from __future__ import annotations

from pathlib import Path

from ..package import dump_package
from ._compile import compile_object, object_name, vmlinux_include_dir
from ._errors import BuildError, CompileError, ToolNotFoundError
from ._meta import generate_meta

__all__ = [
    "BuildError",
    "CompileError",
    "ToolNotFoundError",
    "build_package",
    "compile_object",
    "generate_meta",
    "object_name",
    "vmlinux_include_dir",
]


def build_package(source: Path, *, header: Path | None = None) -> bytes:
    """Compile ``source`` and return the bytes of its ``package.json``.

    ``header`` defaults to ``NAME.h`` next to ``NAME.bpf.c`` when that file exists; its
    structs that the program uses become the export types.
    """
    source = Path(source)
    if header is None:
        candidate = source.with_name(source.name.removesuffix(".c").removesuffix(".bpf") + ".h")
        header = candidate if candidate.is_file() else None
    obj = compile_object(source)
    meta = generate_meta(obj, obj_name=object_name(source), header=header)
    return dump_package(obj, meta)
