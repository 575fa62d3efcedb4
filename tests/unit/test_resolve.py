from __future__ import annotations

import functools
import http.server
import io
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from eunomia_bpf import ResolveError
from eunomia_bpf.resolve import bundled_packages, resolve


@pytest.fixture
def http_dir(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    handler.log_message = lambda *a: None  # type: ignore[attr-defined]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", tmp_path
    finally:
        server.shutdown()
        server.server_close()


def test_local_file(tmp_path: Path) -> None:
    p = tmp_path / "x.package.json"
    p.write_bytes(b"{}")
    assert resolve(str(p)).data == b"{}"


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ResolveError, match="No such file"):
        resolve(str(tmp_path / "nope.json"))


def test_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ResolveError, match="directory"):
        resolve(str(tmp_path) + "/")


def test_stdin() -> None:
    got = resolve("-", stdin=io.BytesIO(b'{"a": 1}'))
    assert got.data == b'{"a": 1}' and got.origin == "standard input"


def test_stdin_size_cap() -> None:
    with pytest.raises(ResolveError, match="limit"):
        resolve("-", stdin=io.BytesIO(b"x" * 11), limit=10)


def test_name_in_eunomia_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "mytool.package.json").write_bytes(b"{1}")
    monkeypatch.setenv("EUNOMIA_PATH", str(tmp_path))
    monkeypatch.chdir("/")
    found = resolve("mytool")
    assert found.data == b"{1}" and found.origin.endswith("mytool.package.json")


def test_home_store_before_bundled(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "packages").mkdir()
    (tmp_path / "packages" / "opensnoop.package.json").write_bytes(b"mine")
    monkeypatch.setenv("EUNOMIA_HOME", str(tmp_path))
    monkeypatch.delenv("EUNOMIA_PATH", raising=False)
    monkeypatch.chdir("/")
    assert resolve("opensnoop").data == b"mine"


def test_bundled_packages_resolve_by_name(monkeypatch: pytest.MonkeyPatch,
                                         tmp_path: Path) -> None:
    monkeypatch.setenv("EUNOMIA_HOME", str(tmp_path))
    monkeypatch.chdir("/")
    names = bundled_packages()
    assert {"opensnoop", "execsnoop", "bootstrap"} <= set(names)
    for name in names:
        assert resolve(name).origin.endswith(f"packages/{name}.package.json")


def test_unknown_name_lists_what_exists(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir("/")
    with pytest.raises(ResolveError, match="no such file or package.*opensnoop"):
        resolve("definitely-not-a-package")


def test_url(http_dir: tuple[str, Path]) -> None:
    url, root = http_dir
    (root / "p.json").write_bytes(b'{"x": 1}')
    seen: list[int] = []
    got = resolve(f"{url}/p.json", progress=lambda n, total: seen.append(n))
    assert got.data == b'{"x": 1}' and seen[-1] == 8


def test_url_404(http_dir: tuple[str, Path]) -> None:
    url, _ = http_dir
    with pytest.raises(ResolveError, match="HTTP 404"):
        resolve(f"{url}/missing.json")


def test_url_size_cap(http_dir: tuple[str, Path]) -> None:
    url, root = http_dir
    (root / "big.json").write_bytes(b"x" * 5000)
    with pytest.raises(ResolveError, match="limit"):
        resolve(f"{url}/big.json", limit=1000)


def test_unreachable_url() -> None:
    with socket.socket() as s:  # a port that was free a moment ago: nothing listens
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(ResolveError, match=f"fetch http://127.0.0.1:{port}/x.json"):
        resolve(f"http://127.0.0.1:{port}/x.json")


def test_unsupported_scheme() -> None:
    with pytest.raises(ResolveError, match="only http"):
        resolve("ftp://example.invalid/x.json")
