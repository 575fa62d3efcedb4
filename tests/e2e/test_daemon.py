"""eunomiad end to end: real ``eunomiad serve`` processes on 127.0.0.1 and a unix socket,
state in tmp_path, real programs in the kernel, httpx as the client.

Authentication is off here (``auth = false``, allowed on loopback only); the token and
signature tests live beside the auth code.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support import require_root

pytestmark = pytest.mark.kernel

EUNOMIAD = [sys.executable, "-m", "eunomia_bpf.cli.eunomiad"]


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _is_worker(pid: int) -> bool:
    try:
        return b"eunomia_bpf.daemon.worker" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def wait_for(what: str, check: Callable[[], Any], timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


class Daemon:
    """One ``eunomiad serve`` process with its config and state in ``root``."""

    def __init__(self, root: Path, config: str = "") -> None:
        self.root = root
        self.socket = root / "eunomiad.sock"
        self.config = root / "eunomiad.toml"
        self.config.write_text(
            f'auth = false\nstate_dir = "state"\n'
            f'listen = ["tcp:127.0.0.1:0", "unix:{self.socket}"]\n{config}')
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = ""
        self.workers: set[int] = set()  # worker pids this daemon reported

    def start(self) -> Daemon:
        log = self.root / "eunomiad.log"
        with log.open("wb") as err:
            self.proc = subprocess.Popen([*EUNOMIAD, "serve", "--config", str(self.config)],
                                         stdin=subprocess.DEVNULL, stdout=err, stderr=err)

        def listening() -> str | None:
            text = log.read_text(errors="replace")
            if self.proc is not None and self.proc.poll() is not None:
                pytest.fail(f"eunomiad exited with {self.proc.returncode}: {text}")
            m = re.search(r"listening on tcp:(\S+)\n", text)
            return m.group(1) if m else None

        self.url = f"http://{wait_for('eunomiad to listen', listening, 30)}"
        return self

    def client(self, **kw: Any) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=60, **kw)

    @property
    def log(self) -> str:
        return (self.root / "eunomiad.log").read_text(errors="replace")

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait()

    def stop(self, timeout: float = 30) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def start_program(self, client: httpx.Client, args: list[str],
                      name: str = "opensnoop") -> dict[str, Any]:
        resp = client.post("/v1/programs", json={"name": name, "args": args})
        assert resp.status_code == 201, resp.text
        program: dict[str, Any] = resp.json()
        self.workers.add(program["pid"])
        return program


@pytest.fixture
def daemons(tmp_path: Path) -> Iterator[Callable[..., Daemon]]:
    """Makes daemons in tmp_path (same ``name``: same state dir); at the end stops each
    with SIGTERM (SIGKILL if need be) and any worker of theirs still alive."""
    require_root()
    made: list[Daemon] = []

    def make(name: str = "d", config: str = "") -> Daemon:
        root = tmp_path / name
        root.mkdir(exist_ok=True)
        daemon = Daemon(root, config)
        made.append(daemon)
        return daemon

    yield make
    for daemon in made:
        if daemon.proc is not None and daemon.proc.poll() is None:
            try:
                daemon.stop(timeout=30)
            except subprocess.TimeoutExpired:
                daemon.kill9()
        for pid in daemon.workers:  # only workers it told us about, checked to be workers
            if _alive(pid) and _is_worker(pid):
                os.kill(pid, signal.SIGKILL)


def read_events(client: httpx.Client, program_id: str, *, cursor: int | None = None,
                follow: bool = False, until: Callable[[list[dict[str, Any]]], bool] | None = None,
                timeout: float = 20, headers: dict[str, str] | None = None,
                ) -> list[dict[str, Any]]:
    """SSE events as parsed ``data`` objects, each with the SSE ``id`` as ``_id``."""
    params: dict[str, Any] = {"follow": "true" if follow else "false"}
    if cursor is not None:
        params["cursor"] = cursor
    events: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    with client.stream("GET", f"/v1/programs/{program_id}/events", params=params,
                       headers=headers, timeout=httpx.Timeout(timeout, read=timeout)) as resp:
        assert resp.status_code == 200, resp.read()
        assert resp.headers["content-type"].startswith("text/event-stream")
        ident = None
        for line in resp.iter_lines():
            if line.startswith("id: "):
                ident = int(line[4:])
            elif line.startswith("data: "):
                event = json.loads(line[6:])
                event["_id"] = ident
                events.append(event)
                if until is not None and until(events):
                    break
            if time.monotonic() > deadline:
                break
    return events


def opened(path: Path) -> Callable[[list[dict[str, Any]]], bool]:
    return lambda events: any(e["event"].get("fname") == str(path) for e in events)


def open_file(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError), open(path, "rb"):
        pass


def wait_event(client: httpx.Client, program_id: str, path: Path,
               timeout: float = 20) -> dict[str, Any]:
    """Open ``path`` until the program reports it (the first open may race the attach)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        open_file(path)
        events = read_events(client, program_id, follow=True, until=opened(path), timeout=2)
        found = [e for e in events if e["event"].get("fname") == str(path)]
        if found:
            return found[0]
    pytest.fail(f"no event for {path} from {program_id}")


def test_opensnoop_by_name_streams_an_event_and_stop_leaves_nothing(
        no_leaks: object, daemons: Callable[..., Daemon], tmp_path: Path) -> None:
    daemon = daemons().start()
    with daemon.client() as client:
        assert client.get("/health").json() == {"status": "ok", "programs": 0}
        program = daemon.start_program(client, ["--targ_tgid", str(os.getpid())])
        assert program["status"] == "running"
        assert program["name"] == "opensnoop"
        assert program["args"] == ["--targ_tgid", str(os.getpid())]
        assert re.fullmatch(r"[0-9a-f]{64}", program["digest"])
        assert any("sys_enter_openat" in a for a in program["attach"])
        assert program["sources"] == ["events"]

        target = tmp_path / "hello-daemon.txt"
        target.write_text("x")
        event = wait_event(client, program["id"], target)
        assert event["source"] == "events"
        assert event["seq"] == event["_id"] >= 1
        assert event["event"]["pid"] == os.getpid()
        assert event["event"]["comm"]

        info = client.get(f"/v1/programs/{program['id']}").json()
        assert info["events"] >= 1 and info["lost"] == 0
        metrics = client.get("/metrics").text
        assert 'eunomiad_programs{status="running"} 1.0' in metrics
        assert f'eunomiad_events_total{{id="{program["id"]}",name="opensnoop"}}' in metrics
        assert "/v1/programs" in client.get("/openapi.json").json()["paths"]

        resp = client.delete(f"/v1/programs/{program['id']}")
        assert resp.json() == {"id": program["id"], "status": "stopped"}
        assert not _alive(program["pid"])
        assert client.get(f"/v1/programs/{program['id']}").status_code == 404
        assert client.get("/v1/programs").json() == {"programs": []}
    # the unix socket serves the same API
    with httpx.Client(transport=httpx.HTTPTransport(uds=str(daemon.socket)),
                      base_url="http://eunomiad") as local:
        assert local.get("/health").json()["status"] == "ok"
    assert daemon.stop() == 0
    assert not daemon.socket.exists()


def test_pause_resume_map_and_log(no_leaks: object, daemons: Callable[..., Daemon],
                                  tmp_path: Path) -> None:
    daemon = daemons().start()
    with daemon.client() as client:
        program = daemon.start_program(client, [], name="bootstrap")
        pid = program["id"]
        sleeper = subprocess.Popen(["sleep", "30"])
        try:
            def has_sleeper() -> bool:
                resp = client.get(f"/v1/programs/{pid}/maps/exec_start")
                assert resp.status_code == 200, resp.text
                return any(e["key"] == sleeper.pid for e in resp.json()["entries"])
            wait_for("the sleeper in exec_start", has_sleeper)
        finally:
            sleeper.kill()
            sleeper.wait()
        assert client.get(f"/v1/programs/{pid}/maps/nope").status_code == 404
        assert client.get(f"/v1/programs/{pid}/maps/rb").status_code == 400  # a ring buffer

        assert client.post(f"/v1/programs/{pid}/pause").json()["status"] == "paused"
        before = client.get(f"/v1/programs/{pid}").json()["events"]
        subprocess.run(["true"], check=True)
        time.sleep(0.5)
        assert client.get(f"/v1/programs/{pid}").json()["events"] == before
        assert client.post(f"/v1/programs/{pid}/resume").json()["status"] == "running"

        def exec_seen() -> bool:
            subprocess.run(["true"], check=True)
            return bool(client.get(f"/v1/programs/{pid}").json()["events"] > before)
        wait_for("an exec event after resume", exec_seen)
        lines = client.get(f"/v1/programs/{pid}/log", params={"tail": 50}).json()["lines"]
        assert any("started worker" in ln for ln in lines)
        assert any("attached" in ln for ln in lines)


def test_cursor_reconnect_misses_nothing_buffered(no_leaks: object,
                                                  daemons: Callable[..., Daemon],
                                                  tmp_path: Path) -> None:
    daemon = daemons().start()
    with daemon.client() as client:
        program = daemon.start_program(client, ["--targ_tgid", str(os.getpid())])
        first = wait_event(client, program["id"], tmp_path / "warm-up")
        paths = [tmp_path / f"cursor-{i}" for i in range(6)]
        for path in paths:
            open_file(path)
        everything = read_events(client, program["id"], follow=True, until=opened(paths[-1]))
        seqs = [e["seq"] for e in everything]
        assert seqs == list(range(1, len(seqs) + 1))  # contiguous from the first
        assert first["seq"] in seqs
        mine = [e for e in everything if e["event"]["fname"].startswith(str(tmp_path / "cursor-"))]
        assert [e["event"]["fname"] for e in mine] == [str(p) for p in paths]

        cursor = mine[2]["seq"]  # the client saw up to the third open, then disconnected
        again = read_events(client, program["id"], cursor=cursor)
        assert [e["seq"] for e in again][:len(seqs) - cursor] == list(range(cursor + 1,
                                                                              len(seqs) + 1))
        assert [e["event"]["fname"] for e in again if e["seq"] in
                {m["seq"] for m in mine}] == [str(p) for p in paths[3:]]
        # a reconnecting EventSource sends Last-Event-ID instead of a cursor
        by_header = read_events(client, program["id"], headers={"Last-Event-ID": str(cursor)})
        assert by_header[0]["seq"] == cursor + 1

        # following: new events arrive on the open stream
        late = tmp_path / "late"
        result: list[dict[str, Any]] = []
        reader = threading.Thread(target=lambda: result.extend(read_events(
            client, program["id"], cursor=seqs[-1], follow=True, until=opened(late))))
        reader.start()
        time.sleep(0.3)
        open_file(late)
        reader.join(30)
        assert result and result[0]["seq"] == seqs[-1] + 1
        assert opened(late)(result)
        client.delete(f"/v1/programs/{program['id']}")


def test_kill9_daemon_then_restart_restores_both_programs(
        no_leaks: object, daemons: Callable[..., Daemon], tmp_path: Path) -> None:
    daemon = daemons("restore").start()
    me = str(os.getpid())
    with daemon.client() as client:
        every = daemon.start_program(client, ["--targ_tgid", me])
        failed_only = daemon.start_program(client, ["--targ_tgid", me, "--targ_failed"])
    daemon.kill9()
    for program in (every, failed_only):  # the kernel told the workers: parent died
        wait_for(f"worker {program['pid']} to exit", lambda p=program: not _alive(p["pid"]), 10)

    again = daemons("restore").start()  # same state dir
    with again.client() as client:
        programs = {p["id"]: p for p in client.get("/v1/programs").json()["programs"]}
        assert set(programs) == {every["id"], failed_only["id"]}
        for old in (every, failed_only):
            new = programs[old["id"]]
            again.workers.add(new["pid"])
            assert new["status"] == "running"
            assert new["args"] == old["args"] and new["digest"] == old["digest"]
            assert new["pid"] != old["pid"]
        missing = tmp_path / "does-not-exist"  # a failed open: both programs see it
        for program in (every, failed_only):
            event = wait_event(client, program["id"], missing)
            assert event["event"]["ret"] < 0
        exists = tmp_path / "exists"
        exists.write_text("x")
        wait_event(client, every["id"], exists)
        failed = read_events(client, failed_only["id"])
        assert all(e["event"]["ret"] < 0 for e in failed)  # its argument still applies
        assert client.post(f"/v1/programs/{every['id']}/pause").status_code == 200

        # a clean stop with a client still following a stream: the stream ends, the
        # workers stop, the desired state (one paused, one running) stays
        streamed: list[dict[str, Any]] = []
        follower = threading.Thread(target=lambda: streamed.extend(read_events(
            client, failed_only["id"], follow=True, timeout=60)))
        follower.start()
        time.sleep(0.3)
        assert again.stop() == 0
        follower.join(10)
        assert not follower.is_alive()
    for program in programs.values():
        assert not _alive(program["pid"])

    third = daemons("restore").start()
    with third.client() as client:
        status = {p["id"]: p["status"] for p in client.get("/v1/programs").json()["programs"]}
        third.workers.update(p["pid"] for p in client.get("/v1/programs").json()["programs"])
        assert status == {every["id"]: "paused", failed_only["id"]: "running"}


def test_twenty_concurrent_clients(no_leaks: object, daemons: Callable[..., Daemon]) -> None:
    daemon = daemons(config="[limits]\nmax_programs = 64\n").start()
    kept: dict[int, str] = {}
    stopped: set[str] = set()
    failures: list[str] = []
    answered = 0
    lock = threading.Lock()
    deadline = time.monotonic() + 12

    def client_loop(n: int) -> None:
        nonlocal answered
        with daemon.client() as client:
            rounds = 0
            while time.monotonic() < deadline or rounds == 0:
                rounds += 1
                try:
                    resp = client.post("/v1/programs", json={
                        "name": "opensnoop", "args": ["--targ_tgid", str(100000 + n)]})
                    with lock:
                        answered += 1
                    if resp.status_code != 201:
                        failures.append(f"start: {resp.status_code} {resp.text}")
                        return
                    program = resp.json()
                    with lock:
                        daemon.workers.add(program["pid"])
                    got = client.get(f"/v1/programs/{program['id']}")
                    listing = client.get("/v1/programs")
                    with lock:
                        answered += 2
                    if got.status_code != 200 or listing.status_code != 200:
                        failures.append(f"get: {got.status_code} {listing.status_code}")
                    keep = n % 4 == 0 and time.monotonic() >= deadline
                    if keep:
                        kept[n] = program["id"]
                        return
                    resp = client.delete(f"/v1/programs/{program['id']}")
                    with lock:
                        answered += 1
                    if resp.status_code != 200:
                        failures.append(f"stop: {resp.status_code} {resp.text}")
                    stopped.add(program["id"])
                except httpx.HTTPError as exc:
                    failures.append(f"{type(exc).__name__}: {exc}")
                    return

    threads = [threading.Thread(target=client_loop, args=(n,)) for n in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(180)
    assert not any(t.is_alive() for t in threads), "a client never got its answer"
    assert not failures, failures[:5]
    assert answered >= 20 * 4
    with daemon.client() as client:
        programs = client.get("/v1/programs").json()["programs"]
        assert {p["id"] for p in programs} == set(kept.values())
        assert all(p["status"] == "running" for p in programs)
        for program in programs:
            assert client.delete(f"/v1/programs/{program['id']}").status_code == 200
    for pid in daemon.workers:
        assert not (_alive(pid) and _is_worker(pid)), f"worker {pid} still running"


def test_a_crashed_worker_is_failed_and_the_others_keep_running(
        no_leaks: object, daemons: Callable[..., Daemon], tmp_path: Path) -> None:
    daemon = daemons().start()
    me = str(os.getpid())
    with daemon.client() as client:
        victim = daemon.start_program(client, ["--targ_tgid", me])
        other = daemon.start_program(client, ["--targ_tgid", me])
        os.kill(victim["pid"], signal.SIGKILL)

        def failed() -> dict[str, Any] | None:
            info: dict[str, Any] = client.get(f"/v1/programs/{victim['id']}").json()
            return info if info["status"] == "failed" else None

        info = wait_for("the victim to be failed", failed)
        assert info["exit_reason"].startswith("worker killed by SIGKILL")
        lines = client.get(f"/v1/programs/{victim['id']}/log").json()["lines"]
        assert any("SIGKILL" in ln and "status failed" in ln for ln in lines)
        assert client.get(f"/v1/programs/{other['id']}").json()["status"] == "running"
        wait_event(client, other["id"], tmp_path / "after-crash")
        assert client.get("/health").json()["programs"] == 2
        assert 'eunomiad_program_failures_total 1.0' in client.get("/metrics").text
        assert client.post(f"/v1/programs/{victim['id']}/pause").status_code == 409
        # a failed program is removed like any other
        assert client.delete(f"/v1/programs/{victim['id']}").status_code == 200


def test_limits_and_bad_requests(no_leaks: object, daemons: Callable[..., Daemon]) -> None:
    daemon = daemons(config="[limits]\nmax_programs = 1\nmax_body = 200000\n").start()
    with daemon.client() as client:
        big = base64.b64encode(os.urandom(300000)).decode()
        resp = client.post("/v1/programs", json={"package": big})
        assert resp.status_code == 413
        assert "limits.max_body" in resp.json()["error"]

        def chunks() -> Iterator[bytes]:  # no Content-Length: counted while read
            yield b'{"package": "'
            for _ in range(30):
                yield b"A" * 10000
            yield b'"}'
        resp = client.post("/v1/programs", content=chunks(),
                           headers={"content-type": "application/json"})
        assert resp.status_code == 413

        program = daemon.start_program(client, [])
        resp = client.post("/v1/programs", json={"name": "opensnoop"})
        assert resp.status_code == 429
        assert "max_programs" in resp.json()["error"]
        client.delete(f"/v1/programs/{program['id']}")

        for body, status, words in [
            ({"name": "../../etc/passwd"}, 400, "not a package name"),
            ({"name": "/etc/passwd"}, 400, "not a package name"),
            ({"name": "no-such-tool"}, 400, "no such file or package"),
            ({"url": "file:///etc/passwd"}, 400, "http"),
            ({"package": "%%%"}, 400, "base64"),
            ({"package": base64.b64encode(b"{}").decode()}, 400, ""),
            ({}, 400, "exactly one"),
            ({"name": "opensnoop", "url": "http://127.0.0.1:1/"}, 400, "exactly one"),
            ({"name": "opensnoop", "bogus": 1}, 400, "bogus"),
            ({"name": "opensnoop", "args": ["--no-such-option"]}, 422, "no-such-option"),
        ]:
            resp = client.post("/v1/programs", json=body)
            assert resp.status_code == status, (body, resp.text)
            assert words in resp.json()["error"], (body, resp.text)
        assert client.get("/v1/programs").json() == {"programs": []}  # nothing kept
        assert client.get("/v1/programs/p-nope").status_code == 404
        assert client.delete("/v1/programs/p-nope").json()["error"].startswith("find program")
        assert client.get("/no/such/route").status_code == 404


def test_config_errors_are_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    for text, words in [
        ('auth = false\nlisten = ["tcp:0.0.0.0:8527"]', "auth = false is allowed only"),
        ('listen = ["udp:1"]', "expected unix:PATH or tcp:HOST:PORT"),
        ("bogus = 1", "unknown key(s) bogus"),
        ("[limits]\nmax_programs = 0", "limits.max_programs must be positive"),
        ("[limits]\nmax_programs = 'x'", "limits.max_programs must be an integer"),
        ("state_dir = ", "read config"),
    ]:
        bad.write_text(text)
        done = subprocess.run([*EUNOMIAD, "serve", "--config", str(bad)], check=False,
                              capture_output=True,
                              text=True, timeout=30)
        assert done.returncode == 1, done
        assert done.stderr.startswith("eunomiad: error: read config "), done.stderr
        assert words in done.stderr and done.stderr.count("\n") == 1, done.stderr
