"""Build packages from BPF C sources: compile, strip, generate the meta, write the package.

``build_package`` is the whole pipeline for one source; ``ecli build`` and ``ecli init``
(projects described by ``ebpm.toml``) are built on it in ``_project.py``. Importing this
package runs nothing: clang is looked up only when :func:`compile_object` is called.

    obj = compile_object(Path("opensnoop.bpf.c"))
    meta = generate_meta(obj, obj_name="opensnoop_bpf")
    data = dump_package(obj, meta)          # from eunomia_bpf.package
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ..package import dump_package
from ._compile import compile_object, object_name, vmlinux_include_dir
from ._errors import BuildError, CompileError, ToolNotFoundError
from ._meta import generate_meta
from ._project import BuildOptions, BuiltPackage, build_project, build_source, init_project

__all__ = [
    "BuildError",
    "BuildOptions",
    "BuiltPackage",
    "CompileError",
    "ToolNotFoundError",
    "build_package",
    "build_project",
    "build_source",
    "compile_object",
    "generate_meta",
    "init_project",
    "object_name",
    "vmlinux_include_dir",
]


def build_package(source: Path, *, header: Path | None = None,
                  include_dirs: Sequence[Path] = (), extra_cflags: Sequence[str] = (),
                  vmlinux_dir: Path | None = None, yaml: bool = False) -> bytes:
    """Compile ``source`` and return the bytes of its ``package.json`` (or ``.yaml``).

    ``header`` defaults to ``NAME.h`` next to ``NAME.bpf.c`` when that file exists; its
    structs that the program uses become the export types. The source's ``///`` doc
    comments go into the meta (package doc, option descriptions, ...). ``include_dirs``,
    ``extra_cflags`` and ``vmlinux_dir`` go to :func:`compile_object`.
    """
    source = Path(source)
    if header is None:
        candidate = source.with_name(source.name.removesuffix(".c").removesuffix(".bpf") + ".h")
        header = candidate if candidate.is_file() else None
    elif not Path(header).is_file():
        raise BuildError(f"build {source.name}: header {header} does not exist")
    obj = compile_object(source, include_dirs=include_dirs, extra_cflags=extra_cflags,
                         vmlinux_dir=vmlinux_dir)
    meta = generate_meta(obj, obj_name=object_name(source), header=header, source=source)
    return dump_package(obj, meta, yaml=yaml)
