"""The bundled packages are exactly what their sources in examples/ build to, byte for byte
(the check CI runs: `scripts/rebuild-packages --check`)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "rebuild-packages"


@pytest.mark.skipif(shutil.which("clang") is None or shutil.which("llvm-strip") is None,
                    reason="rebuilding the bundled packages needs clang and llvm-strip "
                           "(apt-get install clang llvm)")
def test_rebuilding_the_examples_gives_the_bundled_bytes() -> None:
    done = subprocess.run([sys.executable, str(SCRIPT), "--check"], cwd=REPO,
                          capture_output=True, text=True, timeout=600, check=False)

    stale = re.search(r"stale packages: ([\w, -]+?);", done.stderr)
    assert stale is None, (f"bundled packages differ from a fresh build: {stale.group(1)} "
                           f"(run scripts/rebuild-packages)\n{done.stderr}")
    assert done.returncode == 0, f"scripts/rebuild-packages --check failed:\n{done.stderr}"
    checked = re.findall(r"^(\w+): up to date$", done.stdout, re.MULTILINE)
    examples = sorted(p.parent.name for p in (REPO / "examples").glob("*/*.bpf.c")
                      if p.name == f"{p.parent.name}.bpf.c")
    assert sorted(checked) == examples
