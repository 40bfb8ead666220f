"""A refused probe's detail: what its destination's sockets say of the port (probe/refused.py), without root."""

from __future__ import annotations

import socket
from dataclasses import replace

import pytest

from netlab.errors import NetnsGone, netlab_command
from netlab.kernel.sockdiag import Bound
from netlab.model.lab import resolve
from netlab.model.topology import Topology
from netlab.probe import refused
from netlab.probe.matrix import build_matrix
from netlab.probe.tasks import Observation

TOPO = {"name": "rf", "nodes": [{"name": "n1"}], "pods": [{"name": "a", "node": "n1"}, {"name": "b", "node": "n1"}],
        "expect": [{"from": "a", "to": "b", "proto": "tcp", "port": 9999, "reach": True},
                   {"from": "a", "to": "b", "proto": "udp", "port": 9999, "reach": True},
                   {"from": "b", "to": "a", "proto": "tcp", "port": 9999, "reach": False}]}
PROBES = {p.key: p for p in build_matrix(resolve(Topology.model_validate(TOPO)))}
TCP, UDP = PROBES[("a", "b", "tcp", 9999)], PROBES[("a", "b", "udp", 9999)]
B = str(TCP.destination.ip)  # b's address


def listens(address: str, port: int = 9999, family: int = socket.AF_INET, v6only: bool = False) -> Bound:
    return Bound(family, address, port, 10, v6only)


@pytest.fixture
def kernel(monkeypatch):
    """The sockets each (namespace, protocol) dump returns, and the dumps asked for."""
    state = {"sockets": [], "asked": []}

    def bound_in(netns, proto):
        state["asked"].append((netns, proto))
        if isinstance(state["sockets"], Exception):
            raise state["sockets"]
        return state["sockets"]
    monkeypatch.setattr(refused, "bound_in", bound_in)
    return state


def explained(p, obs: Observation, r: refused.Refusals | None = None) -> str:
    (r or refused.Refusals("rf")).explain(p, obs)
    return obs.detail


@pytest.mark.parametrize("sockets, words", [
    ([listens("0.0.0.0", 8080)], "nothing listens on tcp port 9999 in rf-b (ip netns exec rf-b ss -ltn)"),
    ([listens("127.0.0.1")], f"tcp port 9999 in rf-b is bound to 127.0.0.1:9999 only, not to {B} "
                             "(ip netns exec rf-b ss -ltn)"),
    ([listens("::", family=socket.AF_INET6, v6only=True)], f"tcp port 9999 in rf-b is bound to [::]:9999 only, "
                                                             f"not to {B} (ip netns exec rf-b ss -ltn)"),
    ([listens("::", family=socket.AF_INET6)], "tcp port 9999 has a socket in rf-b (*:9999): a rule on the way or "
                                              "in its own firewall refused the probe ({trace} shows where)"),
])
def test_the_words_follow_the_sockets_on_the_port(kernel, sockets, words):
    kernel["sockets"] = sockets
    words = words.replace("{trace}", netlab_command("trace --lab rf a b --proto tcp --port 9999"))  # the test's folder
    assert explained(TCP, Observation(outcome="refused", detail="connection refused")) == \
        f"connection refused: {words}"


def test_udp_only_when_the_port_unreachable_came_from_the_destination(kernel):
    icmp = "destination unreachable: port unreachable (ICMP from {})"
    mine = Observation(outcome="refused", detail=icmp.format(B), reply_from=B)
    assert explained(UDP, mine) == f"{icmp.format(B)}: nothing is bound to udp port 9999 in rf-b " \
                                   "(ip netns exec rf-b ss -lun)"
    router = Observation(outcome="refused", detail=icmp.format("10.244.0.1"), reply_from="10.244.0.1")
    assert explained(UDP, router) == icmp.format("10.244.0.1")  # a REJECT on the way: b never saw it
    assert kernel["asked"] == [("rf-b", "udp")]


def test_nothing_is_read_for_what_was_not_a_failed_refusal(kernel):
    expected = PROBES[("b", "a", "tcp", 9999)]  # reach: false, refused: as expected
    assert explained(expected, Observation(outcome="refused", detail="connection refused")) == "connection refused"
    assert explained(TCP, Observation(outcome="timeout")) == ""
    assert explained(replace(TCP, proto="icmp", port=None), Observation(outcome="refused")) == ""
    assert kernel["asked"] == []


def test_one_dump_a_namespace_and_protocol_and_none_when_it_cannot_be_read(kernel):
    r = refused.Refusals("rf")
    for _ in range(3):
        explained(TCP, Observation(outcome="refused", detail="connection refused"), r)
    assert kernel["asked"] == [("rf-b", "tcp")]
    for err in (NetnsGone("rf-b", "/run/netns/rf-b"), OSError("no sock_diag")):
        kernel["sockets"] = err
        assert explained(TCP, Observation(outcome="refused", detail="connection refused")) == "connection refused"
    kernel["sockets"] = None  # a kernel that cannot list its sockets: nothing claimed
    assert explained(TCP, Observation(outcome="refused", detail="connection refused")) == "connection refused"
