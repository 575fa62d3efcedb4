"""ebpm against real servers on 127.0.0.1: a git daemon serving a publisher's repository
(released with `ebpm publish`) and an HTTP server serving package files."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import require_root

EBPM = [sys.executable, "-m", "eunomia_bpf.cli.ebpm"]
ECLI = [sys.executable, "-m", "eunomia_bpf.cli.ecli"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_port(port: int, proc: subprocess.Popen[bytes]) -> None:
    for _ in range(200):
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port}")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.kill()  # our own child, by its handle
    proc.wait()


def ebpm(home: Path, cwd: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "EUNOMIA_HOME": str(home)}
    done = subprocess.run([*EBPM, *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=300, check=False)
    if check and done.returncode != 0:
        raise AssertionError(f"ebpm {' '.join(args)} failed: {done.stderr}")
    return done


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True,
                          text=True).stdout.strip()


class GitServer:
    def __init__(self, base: Path) -> None:
        self.base = base
        self.port = _free_port()
        # git-daemon itself: `git daemon` would leave it running when killed
        daemon = Path(_git(base, "--exec-path")) / "git-daemon"
        self.proc = subprocess.Popen(
            [str(daemon), f"--base-path={base}", "--export-all", "--reuseaddr",
             "--listen=127.0.0.1", f"--port={self.port}", str(base)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _wait_port(self.port, self.proc)

    @property
    def url(self) -> str:
        return f"git://127.0.0.1:{self.port}/pub.git"

    def stop(self) -> None:
        _stop(self.proc)


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GitServer]:
    """`hello` (the `ebpm init` program) released as v0.1.0 and v0.2.0 by `ebpm publish`."""
    if shutil.which("git") is None or shutil.which("clang") is None:
        pytest.skip("needs git and clang")
    root = tmp_path_factory.mktemp("publisher")
    home = root / "home"
    bare = root / "srv" / "pub.git"
    bare.parent.mkdir()
    _git(root, "init", "--quiet", "--bare", str(bare))
    work = root / "pub"
    ebpm(home, root, "init", "hello", "--dir", str(work))
    _git(work, "init", "--quiet", "-b", "main")
    _git(work, "config", "user.email", "t@example.org")
    _git(work, "config", "user.name", "t")
    _git(work, "add", "-A")
    _git(work, "commit", "--quiet", "-m", "hello")
    _git(work, "remote", "add", "origin", str(bare))
    out = ebpm(home, work, "publish")
    assert "version = \"^0.1\"" in out.stdout
    refused = ebpm(home, work, "publish", check=False)
    assert refused.returncode == 1 and "tag v0.1.0 exists" in refused.stderr
    manifest = work / "ebpm.toml"
    manifest.write_text(manifest.read_text().replace('version = "0.1.0"', 'version = "0.2.0"'))
    _git(work, "commit", "--quiet", "-am", "0.2.0")
    ebpm(home, work, "publish")
    server = GitServer(bare.parent)
    yield server
    server.stop()


def _consumer(path: Path, deps: str, name: str = "app") -> Path:
    path.mkdir(parents=True, exist_ok=True)
    (path / "ebpm.toml").write_text(
        f'[package]\nname = "{name}"\nversion = "0.1.0"\n\n[dependencies]\n{deps}')
    return path


def _lock(path: Path) -> dict[str, object]:
    import tomllib

    doc = tomllib.loads((path / "ebpm.lock").read_text())
    return {p["name"]: p for p in doc["package"]}


def _store_files(home: Path) -> dict[str, bytes]:
    blobs = home / "store" / "sha256"
    return {p.name: p.read_bytes() for p in sorted(blobs.iterdir())} if blobs.is_dir() else {}


def test_git_ranges_lock_update_locked_and_offline(published: GitServer, tmp_path: Path) -> None:
    pub = published.base / "pub.git"
    home = tmp_path / "home"
    app = _consumer(tmp_path / "app", f'hello = {{ git = "{published.url}", version = "^0.1" }}\n')

    ebpm(home, app, "install")
    locked = _lock(app)["hello"]
    assert locked["version"] == "0.1.0"
    assert locked["commit"] == _git(pub, "rev-parse", "v0.1.0^{commit}")
    blob = home / "store" / "sha256" / f"{locked['sha256']}.package.json"
    import hashlib
    assert hashlib.sha256(blob.read_bytes()).hexdigest() == locked["sha256"]
    assert "hello v0.1.0" in ebpm(home, app, "list").stdout

    # a wider range keeps the locked version until `ebpm update`
    (app / "ebpm.toml").write_text((app / "ebpm.toml").read_text().replace("^0.1", "^0"))
    ebpm(home, app, "install")
    assert _lock(app)["hello"]["version"] == "0.1.0"
    ebpm(home, app, "update", "hello")
    assert _lock(app)["hello"]["version"] == "0.2.0"
    assert _lock(app)["hello"]["commit"] == _git(pub, "rev-parse", "v0.2.0^{commit}")

    # another clean home reproduces the same bytes from the lock alone
    home2 = tmp_path / "home2"
    lock_before = (app / "ebpm.lock").read_bytes()
    ebpm(home2, app, "install", "--locked")
    assert (app / "ebpm.lock").read_bytes() == lock_before
    assert _store_files(home2) == {k: v for k, v in _store_files(home).items()
                                   if k.startswith(_lock(app)["hello"]["sha256"])}

    # --locked refuses a manifest that asks for something else
    (app / "ebpm.toml").write_text((app / "ebpm.toml").read_text().replace("^0", "^0.1"))
    refused = ebpm(home2, app, "install", "--locked", check=False)
    assert refused.returncode == 1
    assert refused.stderr.strip().splitlines() == [
        ("ebpm: error: install --locked: ebpm.lock would change (run `ebpm install` without "
        "--locked, or `ebpm update`)")]
    assert (app / "ebpm.lock").read_bytes() == lock_before
    (app / "ebpm.toml").write_text((app / "ebpm.toml").read_text().replace("^0.1", "^0"))

    published.stop()
    try:
        ebpm(home2, app, "install", "--offline", "--locked")
        home3 = tmp_path / "home3"
        gone = ebpm(home3, app, "install", "--offline", check=False)
        assert gone.returncode == 1 and "--offline" in gone.stderr
        assert _store_files(home3) == {}
        down = ebpm(home3, app, "install", check=False)
        assert down.returncode == 1
        assert len(down.stderr.strip().splitlines()) == 1
        assert down.stderr.startswith(f"ebpm: error: fetch {published.url}:")
    finally:
        published.__init__(published.base)  # type: ignore[misc]  # restart for later tests


@pytest.fixture
def http_dir(tmp_path: Path) -> Iterator[tuple[Path, int]]:
    served = tmp_path / "www"
    served.mkdir()
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "http.server", "--bind", "127.0.0.1",
                             str(port)], cwd=served, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        _wait_port(port, proc)
        yield served, port
    finally:
        _stop(proc)


def test_url_dependency_is_verified_and_a_tampered_file_refused(
        http_dir: tuple[Path, int], tmp_path: Path) -> None:
    from eunomia_bpf.resolve import bundled_dir

    served, port = http_dir
    data = (bundled_dir() / "minimal.package.json").read_bytes()
    (served / "minimal.package.json").write_bytes(data)
    url = f"http://127.0.0.1:{port}/minimal.package.json"
    home = tmp_path / "home"
    app = _consumer(tmp_path / "app", "")
    ebpm(home, app, "get", url)
    assert 'minimal = { url = "' in (app / "ebpm.toml").read_text()
    import hashlib
    assert _lock(app)["minimal"]["sha256"] == hashlib.sha256(data).hexdigest()

    tampered = data.replace(b'"minimal', b'"minimax', 1)
    assert tampered != data
    (served / "minimal.package.json").write_bytes(tampered)
    home2 = tmp_path / "home2"
    app2 = _consumer(tmp_path / "app2", f'minimal = {{ url = "{url}", sha256 = '
                                        f'"{hashlib.sha256(data).hexdigest()}" }}\n')
    refused = ebpm(home2, app2, "install", check=False)
    assert refused.returncode == 1
    assert refused.stderr.strip().splitlines() == [
        (f"ebpm: error: verify {url}: sha256 mismatch: expected "
        f"{hashlib.sha256(data).hexdigest()}, got "
        f"{hashlib.sha256(tampered).hexdigest()}")]
    assert _store_files(home2) == {} and not (app2 / "ebpm.lock").exists()

    ebpm(home, app, "remove", "minimal")
    assert "minimal" not in (app / "ebpm.toml").read_text()
    assert "minimal" not in ebpm(home, app, "list").stdout


@pytest.mark.parametrize(("deps", "message"), [
    ('x = "1.0"\n', "line 6: dependency 'x' needs a source"),
    ('x = { git = "git://h/x.git", version = "^1", tag = "v1" }\n',
     "dependency 'x' gives version and tag: choose one"),
    ('x = { path = "../x", colour = "red" }\n', "unknown key 'colour' in dependency 'x'"),
    ('x = { git = "git://h/x.git", version = "^one" }\n', "'one' is not a version"),
])
def test_bad_manifests_give_one_error_line(tmp_path: Path, deps: str, message: str) -> None:
    app = _consumer(tmp_path / "app", deps)
    done = ebpm(tmp_path / "home", app, "install", check=False)
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], done.stderr


def test_cycle_is_one_clear_error(tmp_path: Path) -> None:
    a = _consumer(tmp_path / "a", 'b = { path = "../b" }\n', "a")
    _consumer(tmp_path / "b", 'a = { path = "../a" }\n', "b")
    (tmp_path / "b" / "package.json").write_text("{}")
    done = ebpm(tmp_path / "home", a, "install", check=False)
    assert done.returncode == 1
    assert done.stderr.strip() == ("ebpm: error: resolve dependencies: dependency cycle: "
                                   "a -> b -> a")


def test_conflict_names_both_requirers(published: GitServer, tmp_path: Path) -> None:
    lib = _consumer(tmp_path / "lib", f'hello = {{ git = "{published.url}", version = "^0.2" }}\n',
                    "lib")
    (lib / "package.json").write_text("{}")
    app = _consumer(tmp_path / "app", f'hello = {{ git = "{published.url}", version = "~0.1" }}\n'
                                      'lib = { path = "../lib" }\n')
    home = tmp_path / "home"
    done = ebpm(home, app, "install", check=False)
    assert done.returncode == 1
    assert done.stderr.strip() == (
        f"ebpm: error: resolve dependencies: conflict on hello ({published.url}): app needs "
        f"version ~0.1 (chose 0.1.0), lib needs version ^0.2; no version satisfies both")
    assert _store_files(home) == {} and not (app / "ebpm.lock").exists()
    # compatible ranges meet on the highest version in both
    (app / "ebpm.toml").write_text((app / "ebpm.toml").read_text().replace("~0.1", ">=0.1"))
    ebpm(home, app, "install")
    assert _lock(app)["hello"]["version"] == "0.2.0"
    assert _lock(app)["hello"]["requested_by"] == ["app", "lib"]


@pytest.mark.kernel
def test_installed_module_runs_by_name(published: GitServer, tmp_path: Path,
                                       no_leaks: object) -> None:
    require_root()
    home = tmp_path / "home"
    app = _consumer(tmp_path / "app", f'hello = {{ git = "{published.url}", version = "^0" }}\n')
    ebpm(home, app, "install")
    env = {**os.environ, "EUNOMIA_HOME": str(home)}
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    for argv in ([*EBPM, "run", "hello"], [*ECLI, "run", "hello"]):
        proc = subprocess.Popen(argv, cwd=elsewhere, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.monotonic() + 30
            assert proc.stderr is not None and proc.stdout is not None
            line = proc.stderr.readline()
            assert "running" in line, line
            while time.monotonic() < deadline:
                subprocess.run(["/bin/true"], check=True)
                time.sleep(0.2)
                break
            for _ in range(20):
                subprocess.run(["/bin/true"], check=True)
            proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=30)
        finally:
            _stop(proc)  # type: ignore[arg-type]
        assert proc.returncode == 0, err
        assert "true" in out, out
