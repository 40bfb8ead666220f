"""`trace -o json`'s destination names the flow's protocol whenever it names a port (QA out59 3): `--port 8080`
alone gave `"protocol": "tcp"`, `--proto tcp --port 8080` (the same flow) none, and a node's or an internet host's
port never had one. A port-level trace's destination has both; a ping's has neither (no root)."""

from __future__ import annotations

from pathlib import Path

import pytest

from netlab.model.lab import resolve
from netlab.model.load import load_topology
from netlab.trace.run import packet_ends

TOPOLOGY = Path(__file__).resolve().parents[2] / "topologies" / "services.yaml"


@pytest.fixture(scope="module")
def lab():
    return resolve(load_topology(str(TOPOLOGY)))


@pytest.mark.parametrize("dst,proto,port,want", [
    ("web-1", None, 8080, ("tcp", 8080)), ("web-1", "tcp", 8080, ("tcp", 8080)), ("web-1", "udp", 8080, ("udp", 8080)),
    ("web-1", "tcp", None, ("tcp", 8080)),  # the pod's first TCP port
    ("10.244.0.2", "tcp", 8080, ("tcp", 8080)),
    ("node-2", "tcp", 22, ("tcp", 22)), ("node-2", None, 22, ("tcp", 22)), ("node-2", "udp", 22, ("udp", 22)),
    ("node-2", "tcp", 30080, ("tcp", 30080)),  # a nodePort: its Service's
    ("example", "tcp", 80, ("tcp", 80)), ("svc/web", "tcp", 80, ("tcp", 80)), ("svc/web", None, None, ("tcp", 80)),
    ("127.0.0.1", "udp", 80, ("udp", 80)),
])
def test_a_port_level_traces_destination_has_its_protocol_and_port(lab, dst, proto, port, want):
    _, end, protocol, port_sent = packet_ends(lab, "client", dst, proto, port)
    data = end.flow_json(protocol)  # what run() writes
    assert (data.get("protocol"), data.get("port")) == want == (protocol, port_sent), data
    assert data["proto"] == data["protocol"]  # deprecated, beside it (docs/json.md)


@pytest.mark.parametrize("dst,proto", [("web-1", None), ("node-2", None), ("example", None), ("svc/web", "icmp"),
                                       ("203.0.113.100", "icmp")])
def test_a_pings_destination_has_no_protocol_nor_port(lab, dst, proto):
    """A ping to a Service said its first port and that port's protocol (tcp) under an ICMP trace."""
    src, end, protocol, port = packet_ends(lab, "client", dst, proto, None)
    assert protocol == "icmp" and port is None
    data = end.flow_json(protocol)
    assert not {"protocol", "proto", "port"} & set(data) and data["ip"] == end.ip, data
    assert "protocol" not in src.to_json() and "port" not in src.to_json()  # a source never has them (docs/json.md)
