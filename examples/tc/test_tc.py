"""tc: the classifier on one end of a veth pair reports the UDP datagrams sent from the
other end (in a network namespace of the test's own), then leaves no qdisc behind."""

from __future__ import annotations

import json
import socket
import time
from typing import Any

import pytest

from tests.kernel.helpers import (
    DATAGRAMS,
    UDP_FRAME_LEN,
    VethPair,
    capture_datagrams,
    run,
    veth_in_netns,
)
from tests.support import Ecli

pytestmark = pytest.mark.kernel



def _filter_present(ifname: str) -> None:
    filters = run("tc", "filter", "show", "dev", ifname, "ingress")
    assert "tc_ingress" in filters and "direct-action" in filters, filters


def _clsact_gone(ifname: str) -> None:
    assert "clsact" not in run("tc", "qdisc", "show", "dev", ifname)


def capture(ecli: type[Ecli], veth: VethPair, *package_args: str) -> list[dict[str, Any]]:
    """Events while the peer sends DATAGRAMS to the host end, which receives them all
    (TC_ACT_OK); the clsact qdisc is gone afterwards."""
    return capture_datagrams(ecli, veth, "tc", *package_args,
                             attached=_filter_present, detached=_clsact_gone)


def from_peer(veth: VethPair, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    peer = [int(b) for b in veth.peer_ip.split(".")]
    return [e for e in events if e["protocol"] == "IPV4" and e["saddr"] == peer]


def test_udp_from_the_peer_is_reported_and_passed(ecli: type[Ecli], no_leaks: object) -> None:
    with veth_in_netns() as veth:
        events = capture(ecli, veth)
        ifindex = socket.if_nametoindex(veth.host)
    udp = [e for e in from_peer(veth, events) if e["ip_proto"] == "UDP"]
    assert len(udp) == DATAGRAMS, events
    for e in udp:
        assert e["ifindex"] == ifindex
        assert e["len"] == UDP_FRAME_LEN
        assert e["daddr"] == [int(b) for b in veth.host_ip.split(".")]
        assert e["ttl"] == 64
    assert all(e["ifindex"] == ifindex for e in events)


def test_only_protocol_keeps_ipv4(ecli: type[Ecli], no_leaks: object) -> None:
    with veth_in_netns() as veth:
        events = capture(ecli, veth, "--only_protocol", str(0x0800))
    assert len(from_peer(veth, events)) >= DATAGRAMS, events
    assert {e["protocol"] for e in events} == {"IPV4"}, events


def test_without_ifname_it_runs_on_loopback(ecli: type[Ecli], no_leaks: object) -> None:
    """The package's `/// @tchook {"ifindex": 1, ...}` puts it on lo by default."""
    had_clsact = "clsact" in run("tc", "qdisc", "show", "dev", "lo")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as receiver, \
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
        receiver.bind(("127.0.0.1", 0))
        receiver.settimeout(5)
        run_ = ecli(["run", "--json", "tc", "--only_protocol", str(0x0800)])
        run_.wait_attached()
        assert "tc_ingress" in run("tc", "filter", "show", "dev", "lo", "ingress")
        sender.sendto(b"x", receiver.getsockname())
        assert receiver.recv(16) == b"x"
        time.sleep(0.3)
        out, err = run_.stop()
    assert run_.proc.returncode == 0, err
    events = [json.loads(line) for line in out.splitlines()]
    mine = [e for e in events if e["ip_proto"] == "UDP" and e["len"] == UDP_FRAME_LEN]
    assert mine and all(e["ifindex"] == socket.if_nametoindex("lo") for e in events), events
    assert ("clsact" in run("tc", "qdisc", "show", "dev", "lo")) == had_clsact
