"""A multicast (224.0.0.0/4) or limited-broadcast (255.255.255.255) externalIP: the API server takes it and so does
validate, but no client ever reaches it: the kernel connects no TCP to such an address (tcp_v4_connect: a route
that is multicast or broadcast is ENETUNREACH). validate and up say so in a note; probe leaves those flows out,
with that reason among its not-probed notes, as it leaves out every flow it cannot probe (no root)."""

from __future__ import annotations

import subprocess
import sys

from test_services_plan import lab_of

from netlab.model.endpoints import service_notes
from netlab.probe.services import build

TOPO = {
    "name": "xm",
    "nodes": [{"name": "n1"}],
    "internet": {"cidr": "203.0.113.0/24"},
    "pods": [{"name": "p", "node": "n1", "labels": {"a": "b"}, "containers": [{"name": "c", "ports": [
        {"containerPort": 80}]}]}],
    "services": [{"name": "s", "selector": {"a": "b"}, "externalIPs": ["239.1.1.1", "255.255.255.255",
                                                                       "198.51.100.7"], "ports": [{"port": 80}]}],
}
MULTICAST = ("a multicast address (224.0.0.0/4): no host's kernel connects TCP to it (connect() says Network is "
             "unreachable), so no client reaches the Service there")
BROADCAST = ("the limited broadcast address: no host's kernel connects TCP to it (connect() says Network is "
             "unreachable), so no client reaches the Service there")


def test_validate_notes_each_such_external_ip():
    notes = [n for n in service_notes(lab_of(TOPO)) if "externalIP" in n]
    assert notes == [f"service default/s externalIP 239.1.1.1 is {MULTICAST}; probe leaves it out",
                     f"service default/s externalIP 255.255.255.255 is {BROADCAST}; probe leaves it out"], notes


def test_probe_leaves_them_out_and_says_why_and_probes_the_others():
    plan = build(lab_of(TOPO), ("tcp", "udp"))
    dialled = {p.destination.addr for p in plan.probes if p.svc is not None and p.svc.kind == "ExternalIP"}
    assert {str(a) for a in dialled} == {"198.51.100.7"}
    assert [n for n in plan.notes if "239.1.1.1" in n or "255.255.255.255" in n] == [
        f"svc/s {proto}/80 (externalIP {ip}): not probed: {why}"
        for proto in ("tcp",) for ip, why in (("239.1.1.1", MULTICAST), ("255.255.255.255", BROADCAST))], \
        plan.notes


def test_validate_prints_the_note_and_exits_0(tmp_path):
    (tmp_path / "t.yaml").write_text(
        "name: xm\nnodes: [{name: n1}]\n"
        "pods: [{name: p, node: n1, labels: {a: b}, containers: [{name: c, ports: [{containerPort: 80}]}]}]\n"
        "services: [{name: s, selector: {a: b}, externalIPs: [239.1.1.1], ports: [{port: 80}]}]\n")
    run = subprocess.run([sys.executable, "-m", "netlab", "validate", "-t", str(tmp_path / "t.yaml")],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run
    assert f"service default/s externalIP 239.1.1.1 is {MULTICAST}; probe leaves it out" in run.stdout + run.stderr


UDP_TOPO = {**TOPO, "services": [{"name": "s", "selector": {"a": "b"}, "externalIPs": ["224.1.2.3", "255.255.255.255"],
                                  "ports": [{"name": "h", "port": 80},
                                            {"name": "u", "port": 53, "targetPort": 80, "protocol": "UDP"}]}]}
UDP_MULTICAST = ("a multicast address (224.0.0.0/4): a UDP datagram to it is sent (connect() and send succeed) and "
                 "kube-proxy's rule passes it to an endpoint, but the endpoint's answer never reaches the client, so "
                 "no client gets an answer from the Service there")
UDP_BROADCAST = ("the limited broadcast address: a UDP datagram to it is sent only by a socket with SO_BROADCAST "
                 "(connect() says Permission denied without it), and no answer comes back, so no client gets an "
                 "answer from the Service there")


def test_a_udp_port_s_reason_is_udp_s_not_tcp_s():
    """QA q18 3: a UDP port's not-probed line said no kernel connects TCP to the address; a UDP datagram to it
    is sent (from a real pod: connect() and send succeed, kube-proxy's rule DNATs it, the endpoint answers), and
    no answer reaches the client."""
    plan = build(lab_of(UDP_TOPO), ("tcp", "udp"))
    assert [n for n in plan.notes if "(externalIP 224" in n or "(externalIP 255" in n] == [
        f"svc/s tcp/80 (externalIP 224.1.2.3): not probed: {MULTICAST}",
        f"svc/s tcp/80 (externalIP 255.255.255.255): not probed: {BROADCAST}",
        f"svc/s udp/53 (externalIP 224.1.2.3): not probed: {UDP_MULTICAST}",
        f"svc/s udp/53 (externalIP 255.255.255.255): not probed: {UDP_BROADCAST}"], plan.notes
    notes = [n for n in service_notes(lab_of(UDP_TOPO)) if "externalIP" in n]
    assert notes == [f"service default/s externalIP 224.1.2.3 (its TCP ports) is {MULTICAST}; probe leaves it out",
                     f"service default/s externalIP 224.1.2.3 (its UDP ports) is {UDP_MULTICAST}; probe leaves it out",
                     f"service default/s externalIP 255.255.255.255 (its TCP ports) is {BROADCAST}; probe leaves it "
                     "out",
                     f"service default/s externalIP 255.255.255.255 (its UDP ports) is {UDP_BROADCAST}; probe leaves "
                     "it out"], notes
