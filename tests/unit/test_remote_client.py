"""The eunomiad client's pure parts: SSE parsing, settings precedence, the log follower,
URL handling and connection errors (the API itself: tests/e2e/test_remote_client.py)."""

from __future__ import annotations

import gc
import json
import socket
from pathlib import Path

import pytest

from eunomia_bpf.cli import _remote
from eunomia_bpf.remote import RemoteClient, RemoteError, _parse_sse, package_signature


def _chunks(text: str, size: int) -> list[bytes]:
    data = text.encode()
    return [data[i:i + size] for i in range(0, len(data), size)]


@pytest.mark.parametrize("size", [1, 7, 4096])
def test_sse_events_are_the_data_lines_up_to_a_blank_line(size: int) -> None:
    stream = (': keep-alive\n\nid: 1\ndata: {"seq": 1, "source": "events",\n'
              'data:  "event": {"pid": 7}}\n\nevent: message\r\nretry: 100\r\n'
              'data:{"seq": 2, "source": "events", "event": {}}\r\n\r\n'
              'data: {"seq": 3, "sour')  # cut off by the end of the stream: dropped
    assert list(_parse_sse(iter(_chunks(stream, size)))) == [
        {"seq": 1, "source": "events", "event": {"pid": 7}},
        {"seq": 2, "source": "events", "event": {}}]


def test_sse_data_that_is_not_a_json_object_is_a_remote_error() -> None:
    with pytest.raises(RemoteError, match="read events: not JSON"):
        list(_parse_sse(iter([b"data: {oops\n\n"])))
    with pytest.raises(RemoteError, match="not an object"):
        list(_parse_sse(iter([b"data: [1]\n\n"])))


@pytest.mark.parametrize(("seen", "current", "new"), [
    ([], ["a", "b"], ["a", "b"]),
    (["a", "b"], ["a", "b"], []),
    (["a", "b"], ["a", "b", "c"], ["c"]),
    (["a", "b", "c"], ["b", "c", "d", "e"], ["d", "e"]),   # the tail window moved on
    (["a", "b"], ["x", "y"], ["x", "y"]),                  # nothing in common: all new
])
def test_log_follower_prints_only_the_lines_after_those_seen(
        seen: list[str], current: list[str], new: list[str]) -> None:
    assert _remote._new_lines(seen, current) == new


@pytest.fixture
def clean_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    for name in ("EUNOMIA_REMOTE", "EUNOMIA_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    monkeypatch.setattr(_remote, "_given", {"remote": None, "token": None})
    config = tmp_path / "eunomia" / "client.toml"
    config.parent.mkdir()
    return config


def test_settings_come_from_flags_then_environment_then_config(
        clean_settings: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    clean_settings.write_text('remote = "unix:///run/x.sock"\ntoken = "from-file"\n'
                              'cacert = "~/ca.pem"\n')
    s = _remote.settings()
    assert (s.url, s.token) == ("unix:///run/x.sock", "from-file")
    assert s.cacert == str(Path.home() / "ca.pem")
    assert not _remote.remote_requested()  # the file alone never makes `ecli run` remote
    monkeypatch.setenv("EUNOMIA_REMOTE", "http://127.0.0.1:1")
    monkeypatch.setenv("EUNOMIA_TOKEN", "from-env")
    assert (_remote.settings().url, _remote.settings().token) == ("http://127.0.0.1:1",
                                                                  "from-env")
    assert _remote.remote_requested()
    _remote._given.update(remote="http://127.0.0.1:2", token="from-flag")
    assert (_remote.settings().url, _remote.settings().token) == ("http://127.0.0.1:2",
                                                                  "from-flag")


def test_token_file_in_the_config(clean_settings: Path, tmp_path: Path) -> None:
    (tmp_path / "token").write_text("secret\n")
    clean_settings.write_text(f'remote = "http://127.0.0.1:1"\ntoken_file = '
                              f'"{tmp_path / "token"}"\n')
    assert _remote.settings().token == "secret"


def test_no_daemon_anywhere_is_a_usage_error(clean_settings: Path) -> None:
    import click

    with pytest.raises(click.UsageError, match="--remote URL"):
        _remote.settings()
    clean_settings.write_text("remote = 3\n")
    with pytest.raises(click.ClickException, match="remote must be a string"):
        _remote.settings()


@pytest.mark.parametrize("url", ["ftp://host", "http://", "unix://", "localhost:8527"])
def test_urls_that_are_not_a_daemon_are_refused(url: str) -> None:
    with pytest.raises(RemoteError, match="connect"):
        RemoteClient(url)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def test_nobody_listening_is_one_clear_line() -> None:
    with RemoteClient(f"http://127.0.0.1:{_closed_port()}", "t") as client, \
            pytest.raises(RemoteError, match=r"connection refused \(is eunomiad running"):
        client.list()


# httpcore 1.0 does not close a unix socket whose connect() failed (its sync backend's
# connect_unix_socket); the garbage collector does, with a ResourceWarning
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_no_socket_is_one_clear_line(tmp_path: Path) -> None:
    with RemoteClient(f"unix://{tmp_path}/none.sock") as client, \
            pytest.raises(RemoteError, match=f"connect unix://{tmp_path}/none.sock: "
                          "connection refused") as info:
        client.health()
    assert info.value.status is None
    del info
    gc.collect()  # the leaked socket's warning, here where it is expected


def test_a_signature_beside_the_package_is_found(tmp_path: Path) -> None:
    package = tmp_path / "x.package.json"
    package.write_text("{}")
    assert package_signature(package) is None
    sig = {"key_id": "ab", "algorithm": "ed25519", "signature": "c2ln"}
    (tmp_path / "x.package.json.sig").write_text(json.dumps(sig))
    assert package_signature(package) == sig
    (tmp_path / "x.package.json.sig").write_text("[]")
    from eunomia_bpf.daemon.signing import SignatureError

    with pytest.raises(SignatureError, match="not a JSON object"):
        package_signature(package)
