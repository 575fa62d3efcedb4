"""``ebpm wheel NAME``: an installed module as a pip-installable wheel ``ebpm-NAME``.

The wheel holds one import package, ``ebpm_NAME``, with the module's verified
``package.json`` as package data, a generated ``__init__.py`` that only forwards to
:func:`open_and_run` here and to :func:`eunomia_bpf.cli.ebpm.embedded_main` (so every
wheel runs the code of the eunomia-bpf it is installed with), and the console script
``NAME``.

It is built by setuptools through ``pip wheel --no-build-isolation --no-index``: a tiny
temporary project, no network, no hand-written RECORD. ``SOURCE_DATE_EPOCH`` is fixed, so
the same module gives the same wheel bytes.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import tomli_w

from .. import __version__
from .sources import EbpmError
from .store import Store, read_verified

__all__ = ["BuiltWheel", "build_wheel", "import_name", "open_and_run", "verified_package"]

BUILD_TIMEOUT = 300.0
# setuptools carries its own bdist_wheel from 70.1 on; older ones need the `wheel` package
_MIN_SETUPTOOLS = (70, 1)
# 1980-01-01, the earliest time a zip file can hold: timestamps say nothing about the module
_SOURCE_DATE_EPOCH = "315532800"
_NAME = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?$")

_INIT_TEMPLATE = '''\
"""The eBPF package {name!r} as a Python module, made by `ebpm wheel` (eunomia-bpf)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["PACKAGE_FILE", "SHA256", "main", "open_and_run"]

SHA256 = {sha256!r}
PACKAGE_FILE = Path(__file__).with_name("package.json")


def open_and_run(args: Sequence[str] | Mapping[str, Any] | None = None,
                 duration: float | None = None,
                 callback: Callable[[dict[str, Any]], Any] | None = None) -> None:
    """Load {name!r} into the kernel and run it: print its events as `ecli run` does, or
    call ``callback`` with each event as a dict; ``args`` are the package's options."""
    from eunomia_bpf.ebpm.wheel import open_and_run as run

    run(PACKAGE_FILE, SHA256, args=args, duration=duration, callback=callback)


def main() -> None:
    """The console script {name!r}: `ecli run`'s options, then the package's."""
    from eunomia_bpf.cli.ebpm import embedded_main

    embedded_main({name!r}, PACKAGE_FILE, SHA256)
'''


def import_name(name: str) -> str:
    return "ebpm_" + re.sub(r"[^A-Za-z0-9]", "_", name).lower()


def verified_package(package_file: Path, sha256: str) -> bytes:
    """The bytes of a wheel's ``package.json``, refused when they are not ``sha256``."""
    try:
        return read_verified(package_file, sha256, remedy=(
            "not the package this wheel was built with (reinstall the wheel)"))
    except FileNotFoundError:
        raise EbpmError(f"read {package_file}: missing (reinstall the wheel)") from None


def open_and_run(package_file: Path, sha256: str, *,
                 args: Sequence[str] | Mapping[str, Any] | None = None,
                 duration: float | None = None,
                 callback: Callable[[dict[str, Any]], Any] | None = None) -> None:
    """What a wheel's ``open_and_run`` does: verify, load, attach and run until stopped or
    ``duration`` seconds; events go to ``callback`` or, without one, to standard output
    exactly as ``ecli run`` prints them (the embedding's own "run this tool" mode)."""
    from ..package import read_package
    from ..runner import Program

    prog = Program(read_package(verified_package(package_file, sha256)),
                   origin=str(package_file))
    if args is not None:
        prog.set_arguments(args if isinstance(args, Mapping) else list(args))
    if callback is None:
        # the very loop and sinks of `ecli run`, so both print the same
        from ..cli.ecli import _run

        _run(prog, as_json=False, duration=duration, header=True)
        return
    with prog:
        prog.process_message(callback, duration=duration)


@dataclass(frozen=True)
class BuiltWheel:
    path: Path
    name: str        # the distribution: ebpm-NAME
    version: str
    sha256: str      # of the package.json it carries


def _check_setuptools() -> None:
    try:
        found = metadata.version("setuptools")
    except metadata.PackageNotFoundError:
        found = ""
    parts = tuple(int(p) for p in re.findall(r"\d+", found)[:2])
    if parts < _MIN_SETUPTOOLS:
        have = f"setuptools {found}" if found else "no setuptools"
        raise EbpmError(f"build wheel: needs setuptools>=70.1 in {sys.prefix} (it has "
                        f"{have}): pip install 'eunomia-bpf[wheel]'")


def _project(name: str, version: str, sha256: str) -> dict[str, Any]:
    package = import_name(name)
    return {
        "build-system": {"requires": ["setuptools>=70.1"],
                         "build-backend": "setuptools.build_meta"},
        "project": {
            "name": f"ebpm-{name}",
            "version": version,
            "description": f"The eBPF package {name} (sha256 {sha256[:12]}), run by "
                           f"eunomia-bpf",
            "requires-python": ">=3.11",
            "dependencies": [f"eunomia-bpf>={__version__}"],
            "scripts": {name: f"{package}:main"},
        },
        "tool": {"setuptools": {"packages": [package],
                                "package-data": {package: ["package.json"]}}},
    }


def build_wheel(name: str, out_dir: Path, *, store: Store | None = None) -> BuiltWheel:
    """Build ``ebpm-NAME`` from the installed module ``name`` into ``out_dir``."""
    if not _NAME.match(name):
        raise EbpmError(f"build wheel {name!r}: not a module name (letters, digits, '.', "
                        f"'_', '-')")
    store = store or Store()
    entry = store.index().get(name)
    found = store.installed(name)
    if entry is None or found is None:
        raise EbpmError(f"build wheel {name}: not installed (see `ebpm list`; install it "
                        f"with `ebpm get`)")
    data = found[0]   # verified against entry.sha256 by the store
    version = entry.version or "0.0.0"
    _check_setuptools()
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="ebpm-wheel-") as tmp:
        project = Path(tmp) / "project"
        package_dir = project / import_name(name)
        package_dir.mkdir(parents=True)
        (project / "pyproject.toml").write_text(
            tomli_w.dumps(_project(name, version, entry.sha256)), encoding="utf-8")
        (package_dir / "__init__.py").write_text(
            _INIT_TEMPLATE.format(name=name, sha256=entry.sha256), encoding="utf-8")
        (package_dir / "package.json").write_bytes(data)
        built = Path(tmp) / "dist"
        env = {**os.environ, "SOURCE_DATE_EPOCH": _SOURCE_DATE_EPOCH,
               "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_INPUT": "1"}
        try:
            done = subprocess.run(
                [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                 "--no-index", "--quiet", "--wheel-dir", str(built), str(project)],
                cwd=tmp, env=env, capture_output=True, text=True, timeout=BUILD_TIMEOUT,
                check=False)
        except subprocess.TimeoutExpired:
            raise EbpmError(f"build wheel {name}: pip timed out after "
                            f"{BUILD_TIMEOUT:g} s") from None
        wheels = sorted(built.glob("*.whl")) if built.is_dir() else []
        if done.returncode != 0 or len(wheels) != 1:
            lines = [ln for ln in done.stderr.splitlines() if ln.strip()]
            cause = lines[-1].strip() if lines else f"pip exited with {done.returncode}"
            raise EbpmError(f"build wheel {name}: {cause}")
        target = out_dir / wheels[0].name
        tmp_target = out_dir / f".{wheels[0].name}.tmp"
        tmp_target.write_bytes(wheels[0].read_bytes())
        os.replace(tmp_target, target)
    return BuiltWheel(target, f"ebpm-{name}", version, entry.sha256)
