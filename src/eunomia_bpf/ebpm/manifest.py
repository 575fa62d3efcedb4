"""``ebpm.toml``, the one project manifest shared by ``ecli build`` and the package manager.

::

    [package]
    name = "hello"
    version = "0.1.0"
    description = "Print every execve(2)"
    license = "Dual BSD/GPL"

    [[module]]                      # a module this project builds
    name = "hello"
    source = "hello.bpf.c"
    header = "hello.h"              # optional: its structs become the export types
    cflags = ["-DDEBUG"]            # optional: a list, or one string split like a shell
    include_dirs = ["include"]      # optional

    [[module]]                      # a module this project uses, built elsewhere
    name = "opensnoop"
    path = "../opensnoop"           # (or version = "1.0.0", ...): kept for ebpm

    [dependencies]                  # what ebpm installs (see docs/ebpm.md)
    opensnoop = { git = "https://host/pub.git", version = "^0.1" }  # or tag/branch/rev
    runqlat = { url = "https://host/runqlat.package.json", sha256 = "..." }
    local = { path = "../other", public = true }   # public: re-exported to our users

Pure: :func:`parse_manifest` turns text into a frozen :class:`Manifest` or raises a
:class:`ManifestError` that says where (line) and what (table, key, expected type).
Paths stay as written, relative to the manifest's directory.
"""

from __future__ import annotations

import re
import shlex
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from ..errors import EunomiaError

__all__ = [
    "MANIFEST_NAME",
    "Dependency",
    "Manifest",
    "ManifestError",
    "Module",
    "PackageInfo",
    "parse_dependencies",
    "parse_manifest",
    "read_manifest",
]

MANIFEST_NAME = "ebpm.toml"

_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
_VERSION = re.compile(r"^\d+\.\d+\.\d+(?:[-+][0-9A-Za-z.+-]+)?$")

_TOP_KEYS = ("package", "module", "dependencies")
_PACKAGE_KEYS = ("name", "version", "description", "license", "authors")
_BUILD_MODULE_KEYS = ("name", "source", "header", "cflags", "include_dirs")
# A module without `source` names a package built elsewhere; ebpm defines its keys.
_REFERENCE_KEYS = ("path", "version", "git", "url")


class ManifestError(EunomiaError):
    """An ``ebpm.toml`` is not valid TOML or does not describe a project."""


def _frozen() -> Mapping[str, Any]:
    return MappingProxyType({})


@dataclass(frozen=True)
class PackageInfo:
    name: str
    version: str
    description: str = ""
    license: str = ""
    authors: tuple[str, ...] = ()


@dataclass(frozen=True)
class Module:
    """One ``[[module]]``: built from ``source`` here, or a reference to a built package."""

    name: str
    source: str | None = None
    header: str | None = None
    cflags: tuple[str, ...] = ()
    include_dirs: tuple[str, ...] = ()
    #: the keys of a module built elsewhere (``path``, ``version``, ...), as written
    reference: Mapping[str, Any] = field(default_factory=_frozen)

    @property
    def buildable(self) -> bool:
        return self.source is not None


@dataclass(frozen=True)
class Manifest:
    package: PackageInfo
    modules: tuple[Module, ...] = ()
    #: ``[dependencies]`` as written, for the package manager
    dependencies: Mapping[str, Any] = field(default_factory=_frozen)

    @property
    def buildable_modules(self) -> tuple[Module, ...]:
        return tuple(m for m in self.modules if m.buildable)


def _toml_type(value: Any) -> str:
    names = {bool: "a boolean", int: "an integer", float: "a float", str: "a string",
             list: "an array", dict: "a table"}
    return names.get(type(value), type(value).__name__)


class _Reader:
    """Checks one parsed document, with the text at hand to say on which line."""

    def __init__(self, text: str, origin: str) -> None:
        self.lines = text.splitlines()
        self.origin = origin

    def error(self, message: str, line: int | None = None) -> ManifestError:
        where = f"{self.origin}: line {line}" if line else self.origin
        return ManifestError(f"read {where}: {message}")

    def header_line(self, table: str, index: int = 0) -> int | None:
        """Line number of the ``index``-th ``[table]`` / ``[[table]]`` header."""
        pattern = re.compile(rf"^\s*\[\[?\s*{re.escape(table)}\s*\]\]?\s*(#.*)?$")
        seen = 0
        for number, line in enumerate(self.lines, 1):
            if pattern.match(line):
                if seen == index:
                    return number
                seen += 1
        return None

    def key_line(self, table: str | None, key: str, index: int = 0) -> int | None:
        """Line number of ``key = ...`` inside a table (None: the top level)."""
        start = 0
        if table is not None:
            header = self.header_line(table, index)
            if header is None:
                return None
            start = header
        pattern = re.compile(rf"""^\s*(["']?){re.escape(key)}\1\s*=""")
        for number in range(start, len(self.lines)):
            line = self.lines[number]
            if re.match(r"^\s*\[", line):
                return None
            if pattern.match(line):
                return number + 1
        return None

    def check_keys(self, table: Mapping[str, Any], known: tuple[str, ...], name: str,
                   where: str, index: int = 0) -> None:
        unknown = [k for k in table if k not in known]
        if unknown:
            key = unknown[0]
            raise self.error(f"unknown key {key!r} in {where} (expected one of: "
                             f"{', '.join(known)})", self.key_line(name, key, index))

    def string(self, table: Mapping[str, Any], key: str, name: str, where: str, *,
               index: int = 0, required: bool = False, default: str | None = None) -> str | None:
        if key not in table:
            if required:
                raise self.error(f"missing required key {key!r} in {where}",
                                 self.header_line(name, index))
            return default
        value = table[key]
        if not isinstance(value, str):
            raise self.error(f"{where} {key} must be a string, not {_toml_type(value)}",
                             self.key_line(name, key, index))
        return value

    def strings(self, table: Mapping[str, Any], key: str, name: str, where: str, *,
                index: int = 0, split: bool = False) -> tuple[str, ...]:
        value = table.get(key, [])
        if split and isinstance(value, str):
            try:
                return tuple(shlex.split(value))
            except ValueError as exc:
                raise self.error(f"{where} {key}: {exc}", self.key_line(name, key, index)) \
                    from None
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            expected = "a string or an array of strings" if split else "an array of strings"
            got = _toml_type(value) if not isinstance(value, list) else "an array of other things"
            raise self.error(f"{where} {key} must be {expected}, not {got}",
                             self.key_line(name, key, index))
        return tuple(value)

    def package(self, doc: Mapping[str, Any]) -> PackageInfo:
        if "package" not in doc:
            raise self.error("missing the [package] table (name, version)")
        table = doc["package"]
        if not isinstance(table, dict):
            raise self.error(f"package must be a table, not {_toml_type(table)}",
                             self.key_line(None, "package"))
        where = "[package]"
        self.check_keys(table, _PACKAGE_KEYS, "package", where)
        name = self.string(table, "name", "package", where, required=True)
        version = self.string(table, "version", "package", where, required=True)
        assert name is not None and version is not None
        if not _NAME.match(name):
            raise self.error(f"[package] name {name!r} must be letters, digits, '_', '.' "
                             f"or '-'", self.key_line("package", "name"))
        if not _VERSION.match(version):
            raise self.error(f"[package] version {version!r} is not a version like 0.1.0",
                             self.key_line("package", "version"))
        return PackageInfo(
            name=name, version=version,
            description=self.string(table, "description", "package", where, default="") or "",
            license=self.string(table, "license", "package", where, default="") or "",
            authors=self.strings(table, "authors", "package", where))

    def module(self, table: Any, index: int) -> Module:
        where = f"[[module]] #{index + 1}"
        if not isinstance(table, dict):
            raise self.error(f"{where} must be a table, not {_toml_type(table)}",
                             self.header_line("module", index))
        name = self.string(table, "name", "module", where, index=index, required=True)
        assert name is not None
        if not _NAME.match(name):
            raise self.error(f"{where} name {name!r} must be letters, digits, '_', '.' or '-'",
                             self.key_line("module", "name", index))
        where = f"[[module]] {name!r}"
        if "source" not in table and any(k in table for k in _REFERENCE_KEYS):
            return Module(name=name, reference=MappingProxyType(
                {k: v for k, v in table.items() if k != "name"}))
        self.check_keys(table, _BUILD_MODULE_KEYS, "module", where, index)
        source = self.string(table, "source", "module", where, index=index, required=True)
        return Module(
            name=name, source=source,
            header=self.string(table, "header", "module", where, index=index),
            cflags=self.strings(table, "cflags", "module", where, index=index, split=True),
            include_dirs=self.strings(table, "include_dirs", "module", where, index=index))

    def manifest(self, doc: Mapping[str, Any]) -> Manifest:
        unknown = [k for k in doc if k not in _TOP_KEYS]
        if unknown:
            key = unknown[0]
            line = self.header_line(key) or self.key_line(None, key)
            raise self.error(f"unknown table or key {key!r} (expected: [package], "
                             f"[[module]], [dependencies])", line)
        package = self.package(doc)
        raw_modules = doc.get("module", [])
        if not isinstance(raw_modules, list):
            raise self.error("module must be an array of tables: write [[module]], "
                             "not [module]", self.header_line("module"))
        modules = tuple(self.module(table, i) for i, table in enumerate(raw_modules))
        seen: set[str] = set()
        for i, mod in enumerate(modules):
            if mod.name in seen:
                raise self.error(f"two modules are named {mod.name!r}",
                                 self.key_line("module", "name", i))
            seen.add(mod.name)
        dependencies = doc.get("dependencies", {})
        if not isinstance(dependencies, dict):
            raise self.error(f"dependencies must be a table, not {_toml_type(dependencies)}",
                             self.key_line(None, "dependencies"))
        return Manifest(package=package, modules=modules,
                        dependencies=MappingProxyType(dependencies))


_DEPENDENCY_KEYS = ("git", "url", "path", "version", "tag", "branch", "rev", "sha256",
                    "module", "public")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class Dependency:
    """One dependency: where it comes from and which of its versions and modules."""

    name: str
    kind: str                       # "git", "url" or "path"
    location: str                   # the git URL, the package URL or the path, as written
    version: str | None = None      # a semver range (git: matched against vX.Y.Z tags)
    tag: str | None = None
    branch: str | None = None
    rev: str | None = None
    sha256: str | None = None
    module: str | None = None       # which module of a repository with several
    public: bool = False            # re-exported to whoever depends on us

    @property
    def pin(self) -> str:
        """How the version is chosen, for messages."""
        for label, value in (("tag", self.tag), ("branch", self.branch), ("rev", self.rev),
                             ("version", self.version)):
            if value:
                return f"{label} {value}"
        return "any version"


def _is_git(location: str) -> bool:
    return location.startswith(("git://", "git+", "ssh://", "git@")) or \
        location.removesuffix("/").endswith(".git")


def _dependency(reader: _Reader, name: str, spec: Any, table: str, index: int,
                key: str) -> Dependency:
    where = f"dependency {name!r}"
    line = reader.key_line(table, key, index)
    if not isinstance(spec, dict):
        raise reader.error(f"{where} needs a source: {{ git = URL, version = RANGE }}, "
                           f"{{ url = URL, sha256 = HEX }} or {{ path = DIR }}", line)
    unknown = [k for k in spec if k not in _DEPENDENCY_KEYS]
    if unknown:
        raise reader.error(f"unknown key {unknown[0]!r} in {where} (expected one of: "
                           f"{', '.join(_DEPENDENCY_KEYS)})", line)
    values: dict[str, Any] = {}
    for k, v in spec.items():
        wanted = bool if k == "public" else str
        if not isinstance(v, wanted):
            kind = "a boolean" if wanted is bool else "a string"
            raise reader.error(f"{where} {k} must be {kind}, not {_toml_type(v)}", line)
        values[k] = v
    sources = [k for k in ("git", "url", "path") if k in values]
    if len(sources) != 1:
        raise reader.error(f"{where} needs exactly one of git, url or path", line)
    kind = sources[0]
    pins = [k for k in ("version", "tag", "branch", "rev") if k in values]
    if kind == "git" and len(pins) > 1:
        raise reader.error(f"{where} gives {' and '.join(pins)}: choose one", line)
    if kind != "git" and any(k in values for k in ("tag", "branch", "rev")):
        raise reader.error(f"{where}: tag, branch and rev need a git source", line)
    if "sha256" in values and (kind != "url" or not _SHA256.match(values["sha256"])):
        raise reader.error(f"{where} sha256 must be 64 lowercase hex digits of a url "
                           f"dependency", line)
    if "version" in values:
        from .semver import SemverError, parse_range

        try:
            parse_range(values["version"])
        except SemverError as exc:
            raise reader.error(f"{where}: {exc}", line) from None
    if "module" in values and not _NAME.match(values["module"]):
        raise reader.error(f"{where} module {values['module']!r} is not a module name", line)
    return Dependency(name=name, kind=kind, location=values[kind],
                      version=values.get("version"), tag=values.get("tag"),
                      branch=values.get("branch"), rev=values.get("rev"),
                      sha256=values.get("sha256"), module=values.get("module"),
                      public=values.get("public", False))


def parse_dependencies(text: str, *, origin: str = MANIFEST_NAME) -> tuple[Manifest,
                                                                         tuple[Dependency, ...]]:
    """Parse an ``ebpm.toml`` and check its dependencies: ``[dependencies]`` and the
    ``[[module]]`` entries with a ``path`` instead of a ``source`` (the seed's consumer
    form, where ``path`` is a directory, an http(s) URL or a git URL). Sorted by name."""
    manifest = parse_manifest(text, origin=origin)
    reader = _Reader(text, origin)
    found: dict[str, Dependency] = {}
    for name, spec in manifest.dependencies.items():
        if not _NAME.match(name):
            raise reader.error(f"dependency name {name!r} must be letters, digits, '_', "
                               f"'.' or '-'", reader.key_line("dependencies", name))
        found[name] = _dependency(reader, name, spec, "dependencies", 0, name)
    for index, module in enumerate(manifest.modules):
        if module.buildable:
            continue
        ref = dict(module.reference)
        location = ref.pop("path", None)
        if not isinstance(location, str):
            raise reader.error(f"[[module]] {module.name!r} needs path (a directory, an "
                               f"http(s) URL or a git URL) or source",
                               reader.header_line("module", index))
        kind = ("url" if location.startswith(("http://", "https://")) and
                not _is_git(location) else "git" if _is_git(location) else "path")
        ref[kind] = location
        if kind == "url":
            ref.pop("version", None)  # informative only: a URL names one file
        if module.name in found:
            raise reader.error(f"dependency {module.name!r} is given twice",
                               reader.header_line("module", index))
        found[module.name] = _dependency(reader, module.name, ref, "module", index, "path")
    return manifest, tuple(found[k] for k in sorted(found))


def parse_manifest(text: str, *, origin: str = MANIFEST_NAME) -> Manifest:
    """Parse the text of an ``ebpm.toml``; ``origin`` names it in error messages."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ManifestError(f"read {origin}: invalid TOML: {exc}") from None
    return _Reader(text, origin).manifest(doc)


def read_manifest(path: Path) -> Manifest:
    """Read and parse the ``ebpm.toml`` at ``path``."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ManifestError(f"read {path}: no such file") from None
    except UnicodeDecodeError as exc:
        raise ManifestError(f"read {path}: not UTF-8 text: {exc.reason}") from None
    except OSError as exc:
        raise ManifestError(f"read {path}: {exc.strerror or exc}") from None
    return parse_manifest(text, origin=str(path))
