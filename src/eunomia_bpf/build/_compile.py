"""Compile one ``x.bpf.c`` into a stripped, reproducible BPF object.

Reproducible means: the same source and headers give the same bytes whatever directory
they are built in. clang writes file names into the BTF line info, so it runs in the
source's directory on a relative file name, and every include directory we add is mapped
to ``.`` with ``-ffile-prefix-map``. ``llvm-strip -g`` then drops the DWARF (which holds
more paths) but keeps ``.BTF`` and ``.BTF.ext``, which CO-RE and the meta need.

``vmlinux.h`` comes from a pinned copy in ``build/vmlinux/<arch>/`` by default, so that a
build does not depend on the machine's kernel; ``vmlinux_include_dir("host")`` dumps the
running kernel's BTF with bpftool instead, once per kernel, into a cache directory.
"""

from __future__ import annotations

import hashlib
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
_BPFTOOL_HINT = "install it with `apt-get install bpftool` (Debian/Ubuntu)"
_HOST_BTF = Path("/sys/kernel/btf/vmlinux")

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


def vmlinux_include_dir(which: str | Path = "pinned", *, cache_dir: Path | None = None) -> Path:
    """The directory that holds the ``vmlinux.h`` a build includes.

    ``which`` is ``"pinned"`` (the copy bundled for this machine's architecture),
    ``"host"`` (generated from ``/sys/kernel/btf/vmlinux`` with bpftool, cached per kernel
    BTF in ``cache_dir``, by default ``~/.cache/eunomia-bpf/vmlinux``) or the path of a
    ``vmlinux.h`` file or of a directory holding one.
    """
    if which == "pinned":
        return Path(__file__).parent / "vmlinux" / _arch()[0]
    cache = cache_dir or _default_cache()
    if which == "host":
        return _host_vmlinux(cache)
    path = Path(which).expanduser()
    if path.is_dir():
        if not (path / "vmlinux.h").is_file():
            raise BuildError(f"find vmlinux.h: {path} holds no vmlinux.h")
        return path.resolve()
    if not path.is_file():
        raise BuildError(f"find vmlinux.h: no such file or directory: {path} "
                         f"(expected pinned, host or a path)")
    if path.name == "vmlinux.h":
        return path.resolve().parent
    # `#include "vmlinux.h"` needs that name: keep a copy under it, by content
    return _cached_header(cache, path.read_bytes())


def _default_cache() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "eunomia-bpf" / "vmlinux"


def _cached_header(cache: Path, text: bytes, key: str | None = None) -> Path:
    folder = cache / (key or hashlib.sha256(text).hexdigest()[:16])
    target = folder / "vmlinux.h"
    if not target.is_file() or target.read_bytes() != text:
        try:
            folder.mkdir(parents=True, exist_ok=True)
            tmp = target.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_bytes(text)
            tmp.replace(target)  # atomic: a concurrent build never sees half a header
        except OSError as exc:
            raise BuildError(f"write vmlinux.h to {folder}: {exc.strerror or exc}") from None
    return folder


def _host_vmlinux(cache: Path) -> Path:
    try:
        btf = _HOST_BTF.read_bytes()
    except OSError:
        raise BuildError(f"generate vmlinux.h: {_HOST_BTF} is missing (a kernel without "
                         f"BTF); use the pinned vmlinux.h (--vmlinux pinned)") from None
    key = "host-" + hashlib.sha256(btf).hexdigest()[:16]
    if (cache / key / "vmlinux.h").is_file():
        return cache / key
    bpftool = _tool("bpftool", hint=_BPFTOOL_HINT)
    done = subprocess.run([bpftool, "btf", "dump", "file", str(_HOST_BTF), "format", "c"],
                          capture_output=True, check=False)
    if done.returncode != 0:
        why = done.stderr.decode(errors="replace").strip() or "bpftool failed"
        raise BuildError(f"generate vmlinux.h from {_HOST_BTF}: {why}")
    return _cached_header(cache, done.stdout, key)


def object_name(source: Path) -> str:
    """The object's name as ecc/bpftool derive it: ``opensnoop.bpf.c`` -> ``opensnoop_bpf``."""
    name = source.name.removesuffix(".c").removesuffix(".o")[:63]
    return "".join(c if c.isalnum() else "_" for c in name)


def _tool(name: str, *, hint: str = _INSTALL_HINT) -> str:
    path = shutil.which(name)
    if path is None:
        raise ToolNotFoundError(f"build: {name} not found on PATH; {hint}", tool=name)
    return path


def _run(argv: Sequence[str], *, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), cwd=cwd, capture_output=True, text=True, check=False,
                          env={**os.environ, "LC_ALL": "C"})


def compile_object(source: Path, *, include_dirs: Sequence[Path] = (),
                   extra_cflags: Sequence[str] = (), vmlinux_dir: Path | None = None) -> bytes:
    """Compile ``source`` for BPF (CO-RE, with BTF) and return the stripped ELF object.

    ``vmlinux.h`` (from ``vmlinux_dir``, by default the pinned copy, see
    :func:`vmlinux_include_dir`) and the libbpf headers (``<bpf/bpf_helpers.h>``) are on
    the include path; ``include_dirs`` come first. Raises :class:`ToolNotFoundError` when clang
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
    vmlinux = Path(vmlinux_dir).resolve() if vmlinux_dir is not None else vmlinux_include_dir()
    includes = list(dict.fromkeys([Path(d).resolve() for d in include_dirs] + [vmlinux]))
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
