"""nodePorts as the API server takes them: validation (one nodePort twice for one protocol in a Service) and the
cluster-wide allocator of port numbers (pkg/registry/core/service/storage/alloc.go: one nodePort belongs to one
Service, where only the ports of one port number may share it, TCP and UDP), and the auto-allocated ones."""

from __future__ import annotations

import subprocess
import sys

import pytest
from helpers import located_problems

from netlab.model.lab import resolve
from netlab.model.load import load_topology
from netlab.plan import services

BASE = "name: x\nnodes: [{name: a}]\n"


def problems(text: str, tmp_path) -> list[tuple[int | None, str, str]]:
    return located_problems(text, tmp_path)


def svc(name: str, ports: str, ns: str = "default", kind: str = "NodePort") -> str:
    return f"  - {{name: {name}, namespace: {ns}, type: {kind}, ports: [{ports}]}}\n"


REFUSED = {
    # "spec.ports[0].nodePort: Invalid value: 30080: provided port is already allocated", whatever the protocols
    "two-services-tcp-udp": (svc("s", "{port: 80, nodePort: 30080}")
                             + svc("t", "{port: 80, protocol: UDP, nodePort: 30080}"),
                             6, "services[1].ports[0].nodePort", "already allocated to service default/s"),
    "two-namespaces": (svc("s", "{port: 80, nodePort: 30080}", ns="x")
                       + svc("s", "{port: 80, protocol: UDP, nodePort: 30080}", ns="y"),
                       6, "services[1].ports[0].nodePort", "already allocated to service x/s"),
    "lb-and-nodeport": (svc("s", "{port: 80, nodePort: 30080}", kind="LoadBalancer")
                        + svc("t", "{port: 81, nodePort: 30080}"),
                        6, "services[1].ports[0].nodePort", "already allocated to service default/s"),
    # validation: "spec.ports[1].nodePort: Duplicate value: 30080" (one protocol)
    "one-service-one-protocol": (svc("s", "{name: a, port: 80, nodePort: 30080}, {name: b, port: 81, nodePort: 30080}"),
                                 5, "services[0].ports[1].nodePort", "nodePort 30080/TCP is already used by "
                                 "services[0].ports[0]"),
    # the allocator: TCP 80 and UDP 81 are two port numbers, so two allocations of 30080
    "one-service-two-numbers": (svc("s", "{name: a, port: 80, nodePort: 30080}, "
                                         "{name: b, port: 81, protocol: UDP, nodePort: 30080}"),
                                5, "services[0].ports[1].nodePort",
                                "already allocated to another port of this service"),
}


@pytest.mark.parametrize("name", REFUSED)
def test_a_shared_node_port_is_refused_as_the_api_server_does(tmp_path, name):
    text, line, field, expect = REFUSED[name]
    found = problems(BASE + "internet: {}\nservices:\n" + text, tmp_path)  # LoadBalancers need it
    assert [(p[0], p[1]) for p in found] == [(line, field)], found
    assert expect in found[0][2]


def test_tcp_and_udp_of_one_port_number_share_a_node_port(tmp_path):
    """The one sharing the API server allows (kube-proxy matches the protocol): a DNS-like Service's 53/TCP and
    53/UDP on one nodePort; auto-allocated, they share one too (its svcPortToNodePort), as does a port without
    nodePort whose twin declares one (findRequestedNodePort)."""
    text = BASE + "services:\n" + svc("d", "{name: t, port: 53, nodePort: 30053}, "
                                           "{name: u, port: 53, protocol: UDP, nodePort: 30053}")
    text += svc("e", "{name: t, port: 53}, {name: u, port: 53, protocol: UDP}")
    text += svc("f", "{name: t, port: 53}, {name: u, port: 53, protocol: UDP, nodePort: 30100}")
    assert problems(text, tmp_path) == []
    nps = services.node_ports(resolve(load_topology(str(tmp_path / "t.yaml"))))
    assert nps[("default", "d", 53, "TCP")] == nps[("default", "d", 53, "UDP")] == 30053
    assert nps[("default", "e", 53, "TCP")] == nps[("default", "e", 53, "UDP")] == 30000
    assert nps[("default", "f", 53, "TCP")] == nps[("default", "f", 53, "UDP")] == 30100


def test_auto_node_ports_never_take_a_declared_one_nor_the_vxlan_port(tmp_path):
    """The free ones are the lowest not declared anywhere, whichever Service comes first in the file, and never
    the overlay's UDP port (kube-proxy's DNAT of it would take the VXLAN packets)."""
    text = BASE + "network: {vxlan: {port: 30002}}\nservices:\n"
    text += svc("auto", "{name: a, port: 80}, {name: b, port: 81}, {name: c, port: 82, protocol: UDP}")
    text += svc("late", "{port: 80, nodePort: 30000}")
    text += svc("later", "{port: 80, nodePort: 30001}")
    assert problems(text, tmp_path) == []
    nps = services.node_ports(resolve(load_topology(str(tmp_path / "t.yaml"))))
    assert [nps[("default", "auto", p, proto)] for p, proto in ((80, "TCP"), (81, "TCP"), (82, "UDP"))] == \
        [30003, 30004, 30005]
    assert nps[("default", "late", 80, "TCP")] == 30000 and nps[("default", "later", 80, "TCP")] == 30001
    assert len(set(nps.values())) == len(nps)


def test_validate_says_it_on_one_line_and_exits_2(tmp_path):
    path = tmp_path / "np.yaml"
    path.write_text(BASE + "services:\n" + svc("s", "{port: 80, nodePort: 30080}")
                    + svc("t", "{port: 80, protocol: UDP, nodePort: 30080}"), "utf-8")
    run = subprocess.run([sys.executable, "-m", "netlab", "validate", "-t", str(path)],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 2, run
    lines = (run.stdout + run.stderr).strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"{path}:5: services[1].ports[0].nodePort: nodePort 30080 is already allocated"), lines
    assert "Traceback" not in run.stderr
