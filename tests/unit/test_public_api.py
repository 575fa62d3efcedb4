"""The public surface: a sorted ``__all__`` that imports, and a cheap ``import``."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

import eunomia_bpf

PUBLIC_MODULES = ["eunomia_bpf", "eunomia_bpf.btf", "eunomia_bpf.errors", "eunomia_bpf.output"]


@pytest.mark.parametrize("name", PUBLIC_MODULES)
def test_all_is_sorted_and_every_name_exists(name: str) -> None:
    module = importlib.import_module(name)
    names = list(module.__all__)
    # isort-style, as ruff's RUF022 keeps it: CONSTANTS, then Classes, then functions
    assert names == sorted(names, key=lambda n: (0 if n.isupper() else 1 if n[0].isupper()
                                                 else 2, n))
    for attr in names:
        assert hasattr(module, attr), f"{name}.{attr} is in __all__ but missing"


def test_errors_all_derive_from_eunomia_error() -> None:
    from eunomia_bpf import errors

    for attr in errors.__all__:
        assert issubclass(getattr(errors, attr), eunomia_bpf.EunomiaError)


def test_import_is_cheap() -> None:
    """`ecli run` must not pay for the decoder, libbpf, HTTP, the builder or the daemon."""
    code = ("import sys, eunomia_bpf, eunomia_bpf.cli.ecli; "
            "print(' '.join(sorted(m for m in sys.modules)))")
    loaded = set(subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                                text=True).stdout.split())
    for heavy in ("numpy", "httpx", "eunomia_bpf.decode", "eunomia_bpf.build",
                  "eunomia_bpf._libbpf._lib", "eunomia_bpf.loader", "yaml"):
        assert heavy not in loaded, f"importing eunomia_bpf loads {heavy}"


def test_decoder_is_not_loaded_before_a_ring_buffer_program_is_attached() -> None:
    """Cold start: numpy and the decoder load after attachment (the kernel buffers)."""
    code = """
import sys
from eunomia_bpf import Program
program = Program.open("opensnoop")
try:
    program.run()
except Exception as exc:  # not root, or no kernel: nothing to measure
    print("SKIP", exc)
else:
    print("numpy" in sys.modules, "eunomia_bpf.decode" in sys.modules)
    program.stop()
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    if out.startswith("SKIP"):
        pytest.skip(f"cannot load a program here: {out}")
    assert out == "False False"
