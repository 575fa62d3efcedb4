"""Bad input: one clear error line, a non-zero exit, no traceback, nothing left in the kernel."""

from __future__ import annotations

import base64
import json
import socket
import zlib
from pathlib import Path

import pytest

from tests.support import run_ecli, vector_path


def package_text(obj: bytes, size: int | None = None) -> str:
    return json.dumps({"bpf_object": base64.b64encode(zlib.compress(obj)).decode(),
                       "bpf_object_size": len(obj) if size is None else size,
                       "meta": {"bpf_skel": {"obj_name": "x", "progs": None, "maps": None}}})


def assert_one_line_error(done: object, pattern: str) -> None:
    import re

    assert done.returncode != 0  # type: ignore[attr-defined]
    err = done.stderr  # type: ignore[attr-defined]
    assert "Traceback" not in err, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("ecli: error: ") and re.search(pattern, lines[0]), lines[0]


@pytest.mark.parametrize("content, pattern", [
    ("{ not json", "not valid JSON"),
    ('{"bpf_object": "!!!", "bpf_object_size": 10, "meta": {"bpf_skel": {"obj_name": "x"}}}',
     "base64"),
    (package_text(b"\x7fELF" + bytes(100), size=50), "bpf_object_size"),
    (package_text(bytes(50 * 1024 * 1024), size=4096), "more than bpf_object_size"),
    ('{"bpf_object": "", "meta": {}}', "bpf_object_size"),
    (package_text(b"\x7fELF" + bytes(100)), "ELF|BTF"),
])
def test_corrupt_packages(tmp_path: Path, content: str, pattern: str, no_leaks: object) -> None:
    path = tmp_path / "bad.package.json"
    path.write_text(content)
    assert_one_line_error(run_ecli(["run", str(path)]), pattern)


def test_missing_package() -> None:
    assert_one_line_error(run_ecli(["run", "no-such-package-anywhere"]), "no such file")


def test_unreachable_url(no_leaks: object) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    assert_one_line_error(run_ecli(["run", f"http://127.0.0.1:{port}/p.json"]),
                          f"127.0.0.1:{port}")


@pytest.mark.parametrize("args, pattern", [
    (["--min_duration_ns", "ten"], "min_duration_ns"),
    (["--min_duration_ns", "-5"], "min_duration_ns"),
    (["--no-such-flag"], "no-such-flag"),
])
def test_bad_package_arguments(args: list[str], pattern: str, no_leaks: object) -> None:
    done = run_ecli(["run", str(vector_path("bootstrap")), *args])
    assert_one_line_error(done, pattern)


def test_bad_ecli_option_is_a_usage_error() -> None:
    done = run_ecli(["run", "--duration", "soon", "bootstrap"])
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "--duration" in done.stderr
