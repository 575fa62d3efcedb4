"""tcpstates: a TCP connection over 127.0.0.1 shows up as the state changes of both ends."""

from __future__ import annotations

import json
import os
import socket
import time
from typing import Any

import pytest

from tests.support import Ecli

pytestmark = pytest.mark.kernel

AF_INET = 2
LOOPBACK = [127, 0, 0, 1]
LISTEN_HELD_S = 0.05


def connect_and_close(listener: socket.socket) -> int:
    """Connect to ``listener``, exchange a byte, close the client end first, then the
    server end; return the client's port."""
    port = listener.getsockname()[1]
    client = socket.create_connection(("127.0.0.1", port))
    server, _ = listener.accept()
    client.sendall(b"x")
    assert server.recv(1) == b"x"
    client_port: int = client.getsockname()[1]
    client.close()
    assert server.recv(1) == b""  # the client's FIN has arrived
    server.close()
    return client_port


def transitions(events: list[dict[str, Any]], sport: int, dport: int) -> list[tuple[str, str]]:
    return [(e["oldstate"], e["newstate"]) for e in events
            if e["sport"] == sport and e["dport"] == dport]


def test_loopback_connection_shows_both_ends(ecli: type[Ecli], no_leaks: object) -> None:
    run = ecli(["run", "--json", "tcpstates"])
    run.wait_attached()
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        client_port = connect_and_close(listener)
        time.sleep(LISTEN_HELD_S)
    time.sleep(0.3)
    out, err = run.stop()
    assert run.proc.returncode == 0, err
    events = [json.loads(line) for line in out.splitlines()]

    client = transitions(events, client_port, port)
    server = transitions(events, port, client_port)
    # The client's first change (CLOSE -> SYN_SENT) is reported before it has a port.
    assert ("CLOSE", "SYN_SENT") in transitions(events, 0, port), events
    assert client[0] == ("SYN_SENT", "ESTABLISHED"), client
    assert ("ESTABLISHED", "FIN_WAIT1") in client, client
    assert client[-1][1] == "CLOSE", client
    assert server[:2] == [("LISTEN", "SYN_RECV"), ("SYN_RECV", "ESTABLISHED")], server
    assert server[-1] == ("LAST_ACK", "CLOSE"), server
    listening = transitions(events, port, 0)
    assert listening == [("CLOSE", "LISTEN"), ("LISTEN", "CLOSE")], listening

    mine = [e for e in events if port in (e["sport"], e["dport"])]
    for e in mine:
        assert e["family"] == AF_INET
        assert e["saddr"] == LOOPBACK
        assert e["saddr_v6"] == [0] * 10 + [255, 255] + LOOPBACK  # IPv4-mapped
    for e in mine:
        if e["dport"]:
            assert e["daddr"] == LOOPBACK, e
    # listen(2) runs in this process; changes driven by packets may be seen elsewhere.
    listened = next(e for e in mine if (e["oldstate"], e["newstate"]) == ("CLOSE", "LISTEN"))
    assert listened["pid"] == os.getpid(), listened
    # delta_us: how long the socket stayed in its old state.
    closed = next(e for e in mine if (e["oldstate"], e["newstate"]) == ("LISTEN", "CLOSE"))
    assert closed["delta_us"] >= LISTEN_HELD_S * 1e6, closed


def test_sport_filter_keeps_only_the_listening_side(ecli: type[Ecli], no_leaks: object) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        port = listener.getsockname()[1]
        run = ecli(["run", "--json", "tcpstates", "--target_sport", str(port)])
        run.wait_attached()
        listener.listen()
        connect_and_close(listener)
    time.sleep(0.3)
    out, err = run.stop()
    assert run.proc.returncode == 0, err
    events = [json.loads(line) for line in out.splitlines()]
    assert events, err
    assert {e["sport"] for e in events} == {port}, events
    states = [(e["oldstate"], e["newstate"]) for e in events]
    assert states[0] == ("CLOSE", "LISTEN"), states
    assert ("LISTEN", "SYN_RECV") in states and ("SYN_RECV", "ESTABLISHED") in states, states
    assert ("SYN_SENT", "ESTABLISHED") not in states, states
