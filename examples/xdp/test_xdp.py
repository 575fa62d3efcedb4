"""xdp: the program on one end of a veth pair reports the UDP datagrams sent from the
other end (in a network namespace of the test's own), passes them on, and is gone from
the interface after ecli stops."""

from __future__ import annotations

import json
import socket
import time
from typing import Any

import pytest

from tests.kernel.helpers import (
    DATAGRAMS,
    DISCARD_PORT,
    UDP_FRAME_LEN,
    VethPair,
    capture_datagrams,
    run,
    veth_in_netns,
)
from tests.support import Ecli

pytestmark = pytest.mark.kernel



def _xdp_present(ifname: str) -> None:
    link = run("ip", "link", "show", "dev", ifname)
    assert "prog/xdp" in link and "xdp_report" in link, link


def _xdp_gone(ifname: str) -> None:
    assert "prog/xdp" not in run("ip", "link", "show", "dev", ifname)


def capture(ecli: type[Ecli], veth: VethPair, *package_args: str) -> list[dict[str, Any]]:
    """Events while the peer sends DATAGRAMS to the host end, which receives them all
    (XDP_PASS); the program is gone from the interface afterwards."""
    return capture_datagrams(ecli, veth, "xdp", *package_args,
                             attached=_xdp_present, detached=_xdp_gone)


def test_udp_from_the_peer_is_reported_and_passed(ecli: type[Ecli], no_leaks: object) -> None:
    with veth_in_netns() as veth:
        events = capture(ecli, veth)
        ifindex = socket.if_nametoindex(veth.host)
    udp = [e for e in events if e["ip_proto"] == "UDP" and e["dport"] == DISCARD_PORT]
    assert len(udp) == DATAGRAMS, events
    assert len({e["sport"] for e in udp}) == 1  # one socket sent them all
    for e in udp:
        assert e["ifindex"] == ifindex
        assert e["len"] == UDP_FRAME_LEN
        assert e["protocol"] == "IPV4"
        assert e["sport"] > 0
    assert all(e["ifindex"] == ifindex for e in events)


def test_target_port_keeps_only_that_port(ecli: type[Ecli], no_leaks: object) -> None:
    with veth_in_netns() as veth:
        events = capture(ecli, veth, "--target_port", str(DISCARD_PORT))
    assert len(events) == DATAGRAMS, events
    assert all(e["dport"] == DISCARD_PORT and e["ip_proto"] == "UDP" for e in events), events


def test_without_ifname_it_runs_on_loopback(ecli: type[Ecli], no_leaks: object) -> None:
    """The package's `/// @ifindex 1` puts it on lo by default (generic XDP there)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as receiver, \
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
        receiver.bind(("127.0.0.1", 0))
        receiver.settimeout(5)
        sender.bind(("127.0.0.1", 0))
        run_ = ecli(["run", "--json", "xdp", "--target_port", str(receiver.getsockname()[1])])
        run_.wait_attached()
        assert "xdp_report" in run("ip", "link", "show", "dev", "lo")
        sender.sendto(b"x", receiver.getsockname())
        assert receiver.recv(16) == b"x"
        time.sleep(0.3)
        out, err = run_.stop()
        ports = (sender.getsockname()[1], receiver.getsockname()[1])
    assert run_.proc.returncode == 0, err
    events = [json.loads(line) for line in out.splitlines()]
    assert [(e["ifindex"], e["sport"], e["dport"]) for e in events] == [
        (socket.if_nametoindex("lo"), *ports)], events
    assert "prog/xdp" not in run("ip", "link", "show", "dev", "lo")
