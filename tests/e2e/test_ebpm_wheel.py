"""`ebpm wheel`: an installed module pip-installed into a fresh venv, then run from there
(its console script and `import ebpm_NAME`) against the real kernel."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import time
import zipfile
from pathlib import Path

import pytest

import eunomia_bpf
from tests.support import require_root

pytestmark = pytest.mark.kernel

EBPM = [sys.executable, "-m", "eunomia_bpf.cli.ebpm"]
BUNDLED = Path(eunomia_bpf.__file__).parent / "packages"


def _ebpm(home: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*EBPM, *args], cwd=cwd, env={**os.environ, "EUNOMIA_HOME": str(home)},
                          capture_output=True, text=True, timeout=300, check=False)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """opensnoop, installed from a path source into its own EUNOMIA_HOME, as a wheel."""
    root = tmp_path_factory.mktemp("ebpm-wheel")
    (root / "opensnoop").mkdir()
    (root / "opensnoop" / "opensnoop.package.json").write_bytes(
        (BUNDLED / "opensnoop.package.json").read_bytes())
    (root / "app").mkdir()
    (root / "app" / "ebpm.toml").write_text(
        '[package]\nname = "app"\nversion = "0.1.0"\n\n[dependencies]\n'
        'opensnoop = { path = "../opensnoop" }\n')
    installed = _ebpm(root / "home", root / "app", "install")
    assert installed.returncode == 0, installed.stderr
    built = _ebpm(root / "home", root / "app", "wheel", "opensnoop", "-o", str(root / "dist"))
    assert built.returncode == 0, built.stderr
    path = Path(built.stdout.strip())
    assert path == root / "dist" / "ebpm_opensnoop-0.0.0-py3-none-any.whl"
    again = _ebpm(root / "home", root / "app", "wheel", "opensnoop", "-o", str(root / "again"))
    assert Path(again.stdout.strip()).read_bytes() == path.read_bytes()  # deterministic
    return path


def test_wheel_carries_the_verified_package(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as zf:
        assert zf.read("ebpm_opensnoop/package.json") == \
            (BUNDLED / "opensnoop.package.json").read_bytes()
        meta = zf.read("ebpm_opensnoop-0.0.0.dist-info/METADATA").decode()
        scripts = zf.read("ebpm_opensnoop-0.0.0.dist-info/entry_points.txt").decode()
    assert "Name: ebpm-opensnoop" in meta
    assert "Requires-Dist: eunomia-bpf" in meta
    assert "opensnoop = ebpm_opensnoop:main" in scripts


def test_not_installed_is_one_clear_error(tmp_path: Path) -> None:
    done = _ebpm(tmp_path / "home", tmp_path, "wheel", "nosuch")
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        ("ebpm: error: build wheel nosuch: not installed (see `ebpm list`; install it with "
        "`ebpm get`)")]


@pytest.fixture(scope="module")
def venv(wheel: Path) -> Path:
    """A fresh venv with only the wheel pip-installed (--no-index: nothing downloaded).

    Its dependency, eunomia-bpf, and what that needs cannot be downloaded here, so a .pth
    file puts this project's own venv and source tree on the new venv's path: the wheel is
    installed the way a user would, and imports the eunomia-bpf under test."""
    path = wheel.parent.parent / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(path)], check=True, timeout=300)
    python = path / "bin" / "python"
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--no-deps", "--no-index",
                    "--disable-pip-version-check", str(wheel)], check=True, timeout=300)
    site = subprocess.run([str(python), "-c", ("import sysconfig; "
                           "print(sysconfig.get_paths()['purelib'])")],
                          check=True, capture_output=True, text=True).stdout.strip()
    ours = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"],
            str(Path(eunomia_bpf.__file__).parents[1])}
    (Path(site) / "eunomia-under-test.pth").write_text("\n".join(sorted(ours)) + "\n")
    return path


def _open_until_exit(proc: subprocess.Popen[str], marker: Path, timeout: float = 60) -> None:
    """Open ``marker`` every 0.1 s (from this process) until ``proc`` ends."""
    deadline = time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < deadline:
        marker.read_bytes()
        time.sleep(0.1)


def test_console_script_runs_the_program(venv: Path, tmp_path: Path, no_leaks: object) -> None:
    require_root()
    marker = tmp_path / "opened-by-the-test"
    marker.write_text("x")
    proc = subprocess.Popen([str(venv / "bin" / "opensnoop"), "--duration", "2", "--json",
                             "--targ_pid", str(os.getpid())],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _open_until_exit(proc, marker)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "ecli: running opensnoop" in err
    events = [json.loads(line) for line in out.splitlines()]
    assert any(e["fname"] == str(marker) for e in events), out[:2000]
    assert {e["pid"] for e in events} == {os.getpid()}   # the package option went through


def test_import_open_and_run_with_a_callback(venv: Path, tmp_path: Path,
                                             no_leaks: object) -> None:
    require_root()
    marker = tmp_path / "opened-by-the-test"
    marker.write_text("x")
    script = ("import json, sys, ebpm_opensnoop\n"
              "ebpm_opensnoop.open_and_run(args=['--targ_pid', sys.argv[1]], duration=2,\n"
              "    callback=lambda e: print(json.dumps(e['fname']), flush=True))\n")
    proc = subprocess.Popen([str(venv / "bin" / "python"), "-c", script, str(os.getpid())],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _open_until_exit(proc, marker)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert str(marker) in [json.loads(line) for line in out.splitlines()]


def test_tampered_package_is_refused(venv: Path, tmp_path: Path) -> None:
    copy = tmp_path / "venv"
    subprocess.run(["cp", "-a", str(venv), str(copy)], check=True)
    site = next((copy / "lib").glob("python*/site-packages"))
    package = site / "ebpm_opensnoop" / "package.json"
    package.write_bytes(package.read_bytes().replace(b"opensnoop", b"opensnooq", 1))
    done = subprocess.run([str(copy / "bin" / "python"), "-c",
                           "import ebpm_opensnoop; ebpm_opensnoop.main()", "--duration", "1"],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 1
    assert done.stderr.startswith("opensnoop: error: read ")
    assert "sha256 mismatch: not the package this wheel was built with" in done.stderr
