"""Projects: ``ecli init`` writes one from templates, ``ecli build`` builds one.

A project is a directory with an ``ebpm.toml`` (see :mod:`eunomia_bpf.ebpm.manifest`);
each buildable ``[[module]]`` becomes one package. With one module the package is
``package.json`` in the project directory, so that ``make && ecli run package.json``
works; with several, ``NAME.package.json`` each. A lone source (the public ecc's
``ecc x.bpf.c [x.h]``) builds into ``package.json`` next to it.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..ebpm.manifest import MANIFEST_NAME, Module, read_manifest
from ._errors import BuildError

__all__ = ["BuildOptions", "BuiltPackage", "build_project", "build_source", "init_project"]

TEMPLATES = Path(__file__).parent / "templates"
# template file -> file written into the project ("NAME" is the project's name)
_TEMPLATE_FILES = {
    "NAME.bpf.c.in": "NAME.bpf.c",
    "NAME.h.in": "NAME.h",
    "ebpm.toml.in": MANIFEST_NAME,
    "Makefile.in": "Makefile",
    "gitignore.in": ".gitignore",
    "README.md.in": "README.md",
}
_PROJECT_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]{0,47}$")


@dataclass(frozen=True)
class BuildOptions:
    """What every module of one build shares (the command line's options)."""

    include_dirs: tuple[Path, ...] = ()
    cflags: tuple[str, ...] = ()
    yaml: bool = False
    #: ``"pinned"``, ``"host"`` or the path of a ``vmlinux.h`` (or of its directory)
    vmlinux: str = "pinned"


@dataclass(frozen=True)
class BuiltPackage:
    name: str
    path: Path
    size: int
    digest: str  # sha256 of the file, hex


def init_project(name: str, directory: Path) -> list[Path]:
    """Write a new project called ``name`` into ``directory``; return the files written.

    Nothing is written when any of the files already exists.
    """
    if not _PROJECT_NAME.match(name):
        raise BuildError(f"init {name}: a project name starts with a letter or '_' and has "
                         f"only letters, digits, '_' and '-' (at most 48 characters)")
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise BuildError(f"init {name}: {directory} exists and is not a directory")
    files = {directory / target.replace("NAME", name): TEMPLATES / template
             for template, target in _TEMPLATE_FILES.items()}
    existing = sorted(str(path) for path in files if path.exists() or path.is_symlink())
    if existing:
        raise BuildError(f"init {name}: refusing to overwrite {', '.join(existing)}")
    guard = name.upper().replace("-", "_")
    try:
        directory.mkdir(parents=True, exist_ok=True)
        for path, template in files.items():
            text = template.read_text().replace("{{name}}", name).replace("{{NAME}}", guard)
            with path.open("x") as out:  # "x": never clobber a file created meanwhile
                out.write(text)
    except OSError as exc:
        raise BuildError(f"init {name}: {exc.strerror or exc}: "
                         f"{exc.filename or directory}") from None
    return list(files)


def _write(name: str, path: Path, data: bytes) -> BuiltPackage:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_bytes(data)
        tmp.replace(path)  # a reader never sees half a package
    except OSError as exc:
        raise BuildError(f"write {path}: {exc.strerror or exc}") from None
    return BuiltPackage(name=name, path=path, size=len(data),
                        digest=hashlib.sha256(data).hexdigest())


def _package_bytes(source: Path, header: Path | None, options: BuildOptions,
                   include_dirs: Sequence[Path] = (), cflags: Sequence[str] = ()) -> bytes:
    from . import build_package, vmlinux_include_dir

    return build_package(
        source, header=header,
        include_dirs=[*include_dirs, *options.include_dirs],
        extra_cflags=[*cflags, *options.cflags],
        vmlinux_dir=vmlinux_include_dir(options.vmlinux), yaml=options.yaml)


def _suffix(options: BuildOptions) -> str:
    return ".yaml" if options.yaml else ".json"


def build_source(source: Path, header: Path | None = None, *, outdir: Path | None = None,
                 options: BuildOptions = BuildOptions()) -> BuiltPackage:
    """Build one ``x.bpf.c`` into ``package.json`` next to it (or in ``outdir``)."""
    source = Path(source)
    if not source.is_file():
        raise BuildError(f"build {source}: no such file")
    data = _package_bytes(source, header, options)
    name = source.name.removesuffix(".c").removesuffix(".bpf")
    return _write(name, (outdir or source.parent) / f"package{_suffix(options)}", data)


def build_project(project: Path, *, outdir: Path | None = None,
                  options: BuildOptions = BuildOptions(),
                  progress: Callable[[int, int, Module], None] | None = None,
                  ) -> list[BuiltPackage]:
    """Build every buildable ``[[module]]`` of the project in ``project``.

    ``project`` is the project directory or its ``ebpm.toml``; ``progress(i, n, module)``
    is called before each module is built.
    """
    project = Path(project)
    manifest_path = project if project.is_file() else project / MANIFEST_NAME
    if not manifest_path.is_file():
        raise BuildError(f"build {project}: no {MANIFEST_NAME} here (create a project with "
                         f"`ecli init NAME`, or build a source: `ecli build x.bpf.c`)")
    root = manifest_path.parent
    manifest = read_manifest(manifest_path)
    modules = manifest.buildable_modules
    if not modules:
        raise BuildError(f"build {manifest_path}: no [[module]] with a source to build")
    out = outdir or root
    built = []
    for i, module in enumerate(modules, 1):
        if progress is not None:
            progress(i, len(modules), module)
        assert module.source is not None
        source = root / module.source
        if not source.is_file():
            raise BuildError(f"build module {module.name}: source {source} does not exist")
        header = root / module.header if module.header else None
        data = _package_bytes(source, header, options,
                              include_dirs=[root / d for d in module.include_dirs],
                              cflags=module.cflags)
        filename = ("package" if len(modules) == 1 else f"{module.name}.package") \
            + _suffix(options)
        built.append(_write(module.name, out / filename, data))
    return built
