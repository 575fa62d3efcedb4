"""The client side of eunomiad: a real daemon process (TCP on 127.0.0.1 and a unix
socket, bearer token), driven by ``eunomia_bpf.remote`` and by ``ecli --remote``."""

from __future__ import annotations

import json
import os
import select
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from eunomia_bpf.remote import RemoteClient, RemoteError
from eunomia_bpf.resolve import bundled_dir
from tests.support import ECLI, Ecli, kernel_object_ids, leaked_objects, require_root

pytestmark = pytest.mark.kernel

OPENSNOOP = bundled_dir() / "opensnoop.package.json"


@dataclass
class Daemon:
    url: str            # http://127.0.0.1:PORT
    socket_url: str     # unix:///.../eunomiad.sock
    token: str
    proc: subprocess.Popen[bytes]
    log: Path

    def client(self, url: str | None = None) -> RemoteClient:
        return RemoteClient(url or self.url, self.token)

    def env(self) -> dict[str, str]:
        """The environment of an ``ecli`` that talks to this daemon."""
        return {**os.environ, "EUNOMIA_REMOTE": self.url, "EUNOMIA_TOKEN": self.token,
                "XDG_CONFIG_HOME": str(self.log.parent)}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    require_root()
    pytest.importorskip("eunomia_bpf.daemon.server", reason="eunomiad's server is not built")
    from eunomia_bpf.daemon.auth import TokenStore

    home = tmp_path_factory.mktemp("eunomiad")
    state, sock, port = home / "state", home / "eunomiad.sock", _free_port()
    state.mkdir(mode=0o700)
    token = TokenStore(state / "tokens").create("tests")
    config = home / "eunomiad.toml"
    config.write_text(f'listen = ["tcp:127.0.0.1:{port}", "unix:{sock}"]\n'
                      f'state_dir = "{state}"\n')
    log = home / "eunomiad.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "eunomia_bpf.cli.eunomiad", "serve",
                                 "--config", str(config)], stdout=out, stderr=out)
    found = Daemon(f"http://127.0.0.1:{port}", f"unix://{sock}", token, proc, log)
    deadline = time.monotonic() + 30
    with found.client() as client:
        while True:
            try:
                client.health()
                break
            except RemoteError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    proc.kill()
                    pytest.fail(f"eunomiad did not start: {log.read_text()[-2000:]}")
                time.sleep(0.1)
    yield found
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _open_unique_file(tmp_path: Path) -> str:
    path = tmp_path / f"remote-{uuid.uuid4().hex[:12]}"
    path.write_text("x")  # opened through openat, which opensnoop watches
    return str(path)


def _wait_for_file(events: Iterator[dict[str, Any]], fname: str,
                   timeout: float = 20.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    for event in events:
        if event["event"].get("fname") == fname:
            return event
        if time.monotonic() > deadline:
            break
    pytest.fail(f"no event for {fname}")


def test_client_runs_opensnoop_sees_a_file_opened_and_stops_it(
        daemon: Daemon, tmp_path: Path) -> None:
    before = kernel_object_ids()
    with daemon.client(daemon.socket_url) as client:
        program = client.start("opensnoop", ["--targ_tgid", str(os.getpid())])
        assert program["status"] == "running", program
        assert any("sys_enter_openat" in a for a in program["attach"]), program
        assert kernel_object_ids()["prog"] - before["prog"], "nothing was loaded"
        assert program["id"] in {p["id"] for p in client.list()}
        fname = _open_unique_file(tmp_path)
        event = _wait_for_file(client.events(program["id"]), fname)
        assert event["source"] == "events"
        assert event["event"]["pid"] == os.getpid()
        assert event["event"]["ret"] >= 0
        assert client.get(program["id"])["events"] >= 1
        stopped = client.stop(program["id"])
        assert stopped["status"] == "stopped"
    assert not leaked_objects(before), "kernel objects left behind after stop"


def test_package_bytes_are_sent_and_run(daemon: Daemon, tmp_path: Path) -> None:
    """A package sent as bytes is that package: its digest is the bytes' sha256."""
    import hashlib

    data = OPENSNOOP.read_bytes()
    with daemon.client() as client:
        program = client.start(data, ["--targ_tgid", str(os.getpid())])
        try:
            assert hashlib.sha256(data).hexdigest() in program["digest"]
            fname = _open_unique_file(tmp_path)
            _wait_for_file(client.events(program["id"]), fname)
        finally:
            client.stop(program["id"])


def test_errors_are_one_line_with_the_status(daemon: Daemon) -> None:
    with daemon.client() as client:
        with pytest.raises(RemoteError) as info:
            client.get("p-does-not-exist")
        assert info.value.status == 404
        assert "\n" not in str(info.value)
        with pytest.raises(RemoteError) as info:
            client.start(b'{"not": "a package"}')
        assert info.value.status == 400, info.value
        with pytest.raises(RemoteError) as info:
            client.start("opensnoop", ["--no-such-option", "1"])
        assert info.value.status == 422, info.value  # well-formed, but it cannot run
        assert str(info.value).startswith("parse arguments of opensnoop: ")
        assert "--no-such-option" in str(info.value)
    with RemoteClient(daemon.url, "wrong-token") as client, \
            pytest.raises(RemoteError) as info:
        client.list()
    assert info.value.status == 401


class CuttingProxy:
    """A TCP proxy in front of the daemon that can drop every connection at once."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.open: list[socket.socket] = []
        self.connections = 0
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                downstream, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            with self._lock:
                self.open += [downstream, upstream]
                self.connections += 1
            threading.Thread(target=self._pipe, args=(downstream, upstream),
                             daemon=True).start()

    @staticmethod
    def _pipe(a: socket.socket, b: socket.socket) -> None:
        try:
            while True:
                ready, _, _ = select.select([a, b], [], [], 1.0)
                for src in ready:
                    data = src.recv(65536)
                    if not data:
                        return
                    (b if src is a else a).sendall(data)
        except OSError:
            return
        finally:
            a.close()
            b.close()

    def cut(self) -> None:
        with self._lock:
            for s in self.open:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            self.open.clear()

    def close(self) -> None:
        self.cut()
        self.listener.close()


def test_event_stream_reconnects_from_the_last_seq_it_saw(
        daemon: Daemon, tmp_path: Path) -> None:
    host, port = daemon.url.removeprefix("http://").split(":")
    proxy = CuttingProxy((host, int(port)))
    try:
        with daemon.client() as control, RemoteClient(proxy.url, daemon.token) as client:
            program = control.start("opensnoop", ["--targ_tgid", str(os.getpid())])
            try:
                names = [_open_unique_file(tmp_path) for _ in range(5)]
                seen: list[dict[str, Any]] = []
                events = client.events(program["id"])
                while len({e["event"]["fname"] for e in seen} & set(names)) < 3:
                    seen.append(next(events))
                connections = proxy.connections
                proxy.cut()  # mid-stream: the client must come back from where it was
                names += [_open_unique_file(tmp_path) for _ in range(5)]
                while not set(names) <= {e["event"]["fname"] for e in seen}:
                    seen.append(next(events))
                assert proxy.connections > connections, "the stream was not reopened"
            finally:
                control.stop(program["id"])
    finally:
        proxy.close()
    seqs = [e["seq"] for e in seen]
    assert seqs == sorted(set(seqs)), "events repeated or out of order after reconnecting"
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), "events missed"


# -- ecli --remote -----------------------------------------------------------------------


def _local_header(tmp_path: Path) -> str:
    """The header a local ``ecli run opensnoop`` prints."""
    run = Ecli(["run", str(OPENSNOOP), "--targ_tgid", str(os.getpid())])
    try:
        run.wait_attached()
        _open_unique_file(tmp_path)
        time.sleep(0.5)
    finally:
        out, _ = run.stop()
    return out.splitlines()[0]


def _remote_ecli(daemon: Daemon, args: list[str], **kw: Any) -> Ecli:
    return Ecli(["--remote", daemon.url, "--token", daemon.token, *args], **kw)


def _finish(run: Ecli) -> tuple[str, str]:
    out, err = run.stop()
    assert run.proc.returncode == 0, err
    return out, err


def test_ecli_remote_run_prints_what_a_local_run_prints_and_ctrl_c_stops_it(
        daemon: Daemon, tmp_path: Path) -> None:
    local_header = _local_header(tmp_path)
    before = kernel_object_ids()
    run = _remote_ecli(daemon, ["run", str(OPENSNOOP), "--targ_tgid", str(os.getpid())])
    try:
        run.wait_attached()
        assert f"on {daemon.url}" in run.stderr_head
        fname = _open_unique_file(tmp_path)
        time.sleep(1.0)
    finally:
        out, _ = _finish(run)
    lines = out.splitlines()
    assert lines[0] == local_header  # same columns, same widths
    mine = [ln for ln in lines if ln.endswith(fname)]
    assert mine and str(os.getpid()) in mine[0].split(), lines
    with daemon.client() as client:
        assert all(p["status"] == "stopped" or p["name"] != "opensnoop"
                   for p in client.list()), "ecli left its program on the daemon"
    assert not leaked_objects(before)


def test_ecli_remote_run_json_from_stdin_for_a_duration(daemon: Daemon, tmp_path: Path) -> None:
    fname = str(tmp_path / "opened-during-the-run")

    def opener() -> None:
        time.sleep(1.5)
        Path(fname).write_text("x")

    thread = threading.Thread(target=opener)
    thread.start()
    done = subprocess.run([*ECLI, "run", "--json", "--duration", "4", "-", "--targ_tgid",
                           str(os.getpid())], input=OPENSNOOP.read_bytes(),
                          capture_output=True, env=daemon.env(), timeout=60, check=False)
    thread.join()
    assert done.returncode == 0, done.stderr
    events = [json.loads(line) for line in done.stdout.splitlines()]
    assert any(e["fname"] == fname and e["pid"] == os.getpid() for e in events), events
    assert set(events[0]) == {"ts", "pid", "uid", "ret", "flags", "comm", "fname"}


def test_ecli_remote_management_commands(daemon: Daemon, tmp_path: Path) -> None:
    env = daemon.env()

    def ecli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*ECLI, *args], capture_output=True, text=True, env=env,
                              timeout=60, check=False)

    started = ecli("remote", "start", "opensnoop", "--targ_tgid", str(os.getpid()))
    assert started.returncode == 0, started.stderr
    program_id = started.stdout.strip()
    try:
        listed = ecli("remote", "list")
        assert listed.stdout.splitlines()[0].split() == ["ID", "NAME", "STATUS", "EVENTS",
                                                          "LOST", "STARTED"]
        row = next(ln.split() for ln in listed.stdout.splitlines() if ln.startswith(program_id))
        assert row[1:3] == ["opensnoop", "running"]
        status = json.loads(ecli("remote", "status", "--json", program_id).stdout)
        assert status["args"] == ["--targ_tgid", str(os.getpid())]
        logs = ecli("remote", "logs", program_id)
        assert logs.returncode == 0, logs.stderr
    finally:
        stopped = ecli("remote", "stop", program_id)
    assert stopped.returncode == 0 and "stopped" in stopped.stdout, stopped.stderr
    missing = ecli("remote", "stop", "p-nope")
    assert missing.returncode == 1
    assert missing.stderr.startswith("ecli: error: ") and missing.stderr.count("\n") == 1
    assert "404" in missing.stderr


def test_ecli_remote_without_a_daemon_is_one_clear_line(tmp_path: Path) -> None:
    done = subprocess.run([*ECLI, "--remote", f"http://127.0.0.1:{_free_port()}", "run",
                           "opensnoop"], capture_output=True, text=True, timeout=60,
                          check=False, env={**os.environ, "XDG_CONFIG_HOME": str(tmp_path)})
    assert done.returncode == 1
    assert done.stderr.strip().startswith("ecli: error: connect http://127.0.0.1:")
    assert "connection refused" in done.stderr and done.stderr.count("\n") == 1
