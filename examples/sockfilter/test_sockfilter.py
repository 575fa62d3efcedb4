"""sockfilter: loaded through the Python API and attached to a UDP socket of the test's
own with SO_ATTACH_BPF, it reports each datagram and drops those from other ports."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest

from eunomia_bpf import Program
from tests.support import require_root, run_ecli

pytestmark = pytest.mark.kernel

SO_ATTACH_BPF = 50  # asm-generic/socket.h; Python's socket module does not name it
LOOPBACK = [127, 0, 0, 1]


def udp_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    return sock


def drain(sock: socket.socket) -> list[tuple[bytes, int]]:
    """Every datagram waiting on ``sock``: (payload, source port)."""
    sock.settimeout(0.5)
    got = []
    try:
        while True:
            data, (_, port) = sock.recvfrom(64)
            got.append((data, port))
    except TimeoutError:
        return got


@pytest.fixture
def sockets() -> Iterator[tuple[socket.socket, socket.socket, socket.socket]]:
    """A receiver and two senders on 127.0.0.1."""
    require_root()
    receiver, first, second = udp_socket(), udp_socket(), udp_socket()
    with receiver, first, second:
        yield receiver, first, second


def filtered(receiver: socket.socket, senders: tuple[socket.socket, ...],
             **arguments: int) -> tuple[list[tuple[bytes, int]], list[dict[str, Any]]]:
    """What ``receiver`` got, and the filter's events, when each sender sends its port."""
    with Program.open("sockfilter", arguments=arguments) as prog:
        assert prog.running is not None
        fd = prog.running.programs["socket_filter"].fd
        receiver.setsockopt(socket.SOL_SOCKET, SO_ATTACH_BPF, fd)
        for sender in senders:
            sender.sendto(str(port(sender)).encode(), receiver.getsockname())
        received = drain(receiver)
        events = list(prog.events(duration=0.3))
    return received, events


def port(sock: socket.socket) -> int:
    value: int = sock.getsockname()[1]
    return value


def test_only_sport_drops_the_other_sender(sockets: tuple[socket.socket, ...],
                                           no_leaks: object) -> None:
    receiver, kept, dropped = sockets
    received, events = filtered(receiver, (kept, dropped), only_sport=port(kept))
    receiver_port = port(receiver)
    receiver.close()  # the attached filter holds the program until its socket closes
    assert received == [(str(port(kept)).encode(), port(kept))]
    verdicts = {e["sport"]: e["kept"] for e in events}
    assert verdicts == {port(kept): True, port(dropped): False}, events
    for e in events:
        assert e["ip_proto"] == "UDP"
        assert e["saddr"] == e["daddr"] == LOOPBACK
        assert e["dport"] == receiver_port
        assert e["len"] == 8 + len(str(e["sport"]))  # the UDP header and the payload


def test_without_options_every_datagram_passes(sockets: tuple[socket.socket, ...],
                                               no_leaks: object) -> None:
    receiver, *senders = sockets
    received, events = filtered(receiver, tuple(senders))
    receiver.close()
    assert sorted(p for _, p in received) == sorted(port(s) for s in senders)
    assert sorted(e["sport"] for e in events) == sorted(port(s) for s in senders)
    assert all(e["kept"] for e in events)


def test_ecli_loads_it_without_a_socket_to_attach_to(no_leaks: object) -> None:
    require_root()
    done = run_ecli(["run", "--duration", "0.5", "sockfilter"])
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == ""  # nothing reaches a filter no socket carries
