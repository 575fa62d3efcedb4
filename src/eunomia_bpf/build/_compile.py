"""Compile one ``x.bpf.c`` into a stripped, reproducible BPF object.

Reproducible means: the same source and headers give the same bytes whatever directory
they are built in. clang writes file names into the BTF line info, so it runs in the
source's directory on a relative file name, and every include directory we add is mapped
to ``.`` with ``-ffile-prefix-map``. ``llvm-strip -g`` then drops the DWARF (which holds
more paths) but keeps ``.BTF`` and ``.BTF.ext``, which CO-RE and the meta need.
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

from ._errors import BuildError, CompileError, ToolNotFoundError

__all__ = ["compile_object", "object_name", "vmlinux_include_dir"]

_INSTALL_HINT = "install it with `apt-get install clang llvm` (Debian/Ubuntu)"
_LIBBPF_HINT = "install the libbpf headers with `apt-get install libbpf-dev`"

# machine -> (directory under build/vmlinux/, -D__TARGET_ARCH_*, multiarch include dir)
_ARCHES = {
    "x86_64": ("x86", "x86", "x86_64-linux-gnu"),
}


def _arch() -> tuple[str, str, str]:
    machine = platform.machine()
    try:
        return _ARCHES[machine]
    except KeyError:
        raise BuildError(f"compile: no pinned vmlinux.h for {machine!r} "
                         f"(have: {', '.join(sorted(_ARCHES))})") from None


def vmlinux_include_dir() -> Path:
    """The directory holding the pinned ``vmlinux.h`` for this machine's architecture."""
    return Path(__file__).parent / "vmlinux" / _arch()[0]


def object_name(source: Path) -> str:
    """The object's name as ecc/bpftool derive it: ``opensnoop.bpf.c`` -> ``opensnoop_bpf``."""
    name = source.name.removesuffix(".c").removesuffix(".o")[:63]
    return "".join(c if c.isalnum() else "_" for c in name)


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise ToolNotFoundError(f"build: {name} not found on PATH; {_INSTALL_HINT}", tool=name)
    return path


def _run(argv: Sequence[str], *, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), cwd=cwd, capture_output=True, text=True, check=False,
                          env={**os.environ, "LC_ALL": "C"})


def compile_object(source: Path, *, include_dirs: Sequence[Path] = (),
                   extra_cflags: Sequence[str] = ()) -> bytes:
    """Compile ``source`` for BPF (CO-RE, with BTF) and return the stripped ELF object.

    The pinned ``vmlinux.h`` and the libbpf headers (``<bpf/bpf_helpers.h>``) are on the
    include path; ``include_dirs`` come first. Raises :class:`ToolNotFoundError` when clang
    or llvm-strip is missing and :class:`CompileError` with clang's diagnostics when the
    source does not compile.
    """
    source = Path(source).resolve()
    if not source.is_file():
        raise BuildError(f"compile {source.name}: no such file: {source}")
    clang = _tool("clang")
    strip = _tool("llvm-strip")
    _, target_arch, multiarch = _arch()
    if not Path("/usr/include/bpf/bpf_helpers.h").is_file():
        raise ToolNotFoundError(f"compile {source.name}: <bpf/bpf_helpers.h> not found; "
                                f"{_LIBBPF_HINT}", tool="libbpf-dev")

    src_dir = source.parent
    includes = [Path(d).resolve() for d in include_dirs] + [vmlinux_include_dir()]
    argv = [clang, "-g", "-O2", "-target", "bpf", f"-D__TARGET_ARCH_{target_arch}",
            f"-I/usr/include/{multiarch}"]
    for inc in includes:
        argv.append(f"-I{inc}")
    # Longest prefix first: clang applies the first map that matches.
    for prefix in sorted({src_dir, *includes}, key=lambda p: len(str(p)), reverse=True):
        argv.append(f"-ffile-prefix-map={prefix}=.")
    argv += list(extra_cflags)

    with tempfile.TemporaryDirectory(prefix="eunomia-build-") as tmp:
        out = Path(tmp) / "out.bpf.o"
        done = _run([*argv, "-c", source.name, "-o", str(out)], cwd=src_dir)
        if done.returncode != 0:
            raise CompileError(source.name, done.stderr or done.stdout)
        done = _run([strip, "-g", str(out)], cwd=src_dir)
        if done.returncode != 0:
            raise BuildError(f"strip {source.name}: {done.stderr.strip() or 'llvm-strip failed'}")
        return out.read_bytes()
