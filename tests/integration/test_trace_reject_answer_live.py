"""A REJECT's ICMP answer to a UDP datagram, walked back as the reply, checked with tcpdump on a real lab (root).

A NetworkPolicy's REJECT in the node's FORWARD (icmp-port-unreachable for UDP) and kube-proxy's REJECT of a nodePort
without endpoints answer in the name of the address the datagram was for; conntrack relates the ICMP error to the
flow and it goes back the reply's way to the client, whose tcpdump sees it. trace showed no reply rows at all (the
TCP reset of the same REJECT had them) (qa-q54 #2). The ICMP error is the node's own packet, from the node's
address: the one the datagram was for (a nodePort), else the one the node's route back to the client picks (a
policy's REJECT of a forwarded or bridged datagram: flannel.1's or cni0's, never the pod's) (qa58k #1).
"""

from __future__ import annotations

import pytest

from helpers import ipv4_of, lab_up, traced, unique_lab, write_topology
from test_trace_kernel_ways_live import tcpdump

pytestmark = pytest.mark.root

TOPOLOGY = """name: {lab}
nodes: [{{name: n1}}, {{name: n2}}]
pods:
  - {{name: a, node: n1}}
  - {{name: c, node: n2, labels: {{app: web}}}}
  - {{name: d, node: n2}}
services:
  - {{name: none, type: NodePort, selector: {{app: nothing}}, ports: [{{port: 54, protocol: UDP, nodePort: 30054}}]}}
networkPolicies:
  - {{name: deny-web, spec: {{podSelector: {{matchLabels: {{app: web}}}}, policyTypes: [Ingress]}}}}
"""


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    name = unique_lab("tra")
    path = write_topology(tmp_path_factory.mktemp(name), TOPOLOGY.format(lab=name), f"{name}.yaml")
    with lab_up(path, name):
        yield name


def _answered(d: dict, client: str, words: str) -> list[dict]:
    """The reply rows: the REJECT's row first, every row a capture watches seen, the last one the client's."""
    rows = d["reply_hops"]
    assert rows and rows[0]["kind"] == "reject", [(h["index"], h["kind"], h["decision"][:60]) for h in rows]
    watched = [h for h in rows if h["observe"] is not None]
    assert watched and all(h["seen"] for h in watched), [(h["index"], h["netns"], h["device"], h["seen"])
                                                         for h in watched]
    last = rows[-1]
    assert (last["netns"], last["kind"]) == (client, "deliver") and words in last["evidence"], last
    assert last["facts"]["icmp_error"] == "destination unreachable: port unreachable"
    assert d["reply_lost"] is None and not d["delivered"] and d["reply"] == "error: Connection refused"
    return rows


@pytest.mark.parametrize("client", ["a", "d"])  # across the VXLAN overlay, and a pod of the same node (bridged)
def test_a_policy_rejects_port_unreachable_is_walked_back_to_the_client(lab, client):
    c = ipv4_of(f"{lab}-c", "eth0")
    with tcpdump(f"{lab}-{client}", "eth0", "icmp") as seen:
        rc, d = traced(lab, client, "c", "--proto", "udp", "--port", "5353")
    assert rc == 1, d["lost"]
    assert any(f"ICMP {c} udp port 5353 unreachable" in line for line in seen), seen  # the kernel's own view
    rows = _answered(d, f"{lab}-{client}", f"ICMP {c} udp port 5353 unreachable")
    # from n2's own address, the one its route back to the client picks (not c's: the kernel's icmp_send of a
    # forwarded packet), as tcpdump in the client sees it (qa58k #1)
    node = ipv4_of(f"{lab}-n2", "flannel.1" if client == "a" else "cni0")
    assert any(f"IP {node} > " in line for line in seen), seen
    assert rows[0]["decision"].startswith(f"the REJECT at hop {d['lost']['hop']} answers the request with an ICMP "
                                          f"port unreachable (type 3 code 3) from {node}, the address its route to "
                                          "the client picks"), rows[0]["decision"]
    assert rows[-1]["observe"]["flow"].startswith(f"{node} → "), rows[-1]["observe"]


def test_kube_proxys_no_endpoint_reject_is_walked_back_to_the_client(lab):
    with tcpdump(f"{lab}-a", "eth0", "icmp") as seen:
        rc, d = traced(lab, "a", "n2", "--proto", "udp", "--port", "30054")
    n2 = ipv4_of(f"{lab}-n2", "eth0")
    assert rc == 1 and d["refused"] and "has no endpoints" in d["refused"], d["lost"]
    assert any(f"{n2} > " in line and "udp port 30054 unreachable" in line for line in seen), seen
    rows = _answered(d, f"{lab}-a", f"ICMP {n2} udp port 30054 unreachable")
    assert rows[0]["decision"].startswith(f"kube-proxy's REJECT at hop {d['lost']['hop']} answers the request with "
                                          f"an ICMP port unreachable (type 3 code 3) from {n2}, the address the "
                                          "request was for"), rows[0]["decision"]
    assert (rows[1]["netns"], rows[1]["device"]) == (f"{lab}-n2", "eth0")  # it leaves n2 by eth0


def test_the_impairment_note_names_only_devices_the_packets_left_by(lab):
    """n2's FORWARD REJECT drops the datagram after n2's route picked cni0: it never reaches cni0's queue (tcpdump
    there sees nothing), so cni0's impairment is not on its path (qa-q54 #4); the ICMP answer leaves by n2's eth0
    and n1's cni0, whose impairments it is (with the rows of the answer, qa-q54 #2)."""
    from helpers import netlab

    for target in ("n2:cni0", "n2:eth0", "n1:cni0"):
        netlab("impair", "--lab", lab, target, "--rate", "30mbit")
    try:
        with tcpdump(f"{lab}-n2", "cni0", "udp port 5353") as seen:
            rc, d = traced(lab, "a", "c", "--proto", "udp", "--port", "5353")
        assert rc == 1 and seen == [], seen  # never on n2's cni0
        on = [(i["target"], i["direction"]) for i in d["impairments"]]
        assert on == [("n2:eth0", "reply"), ("n1:cni0", "reply")], d["impairments"]
        rc, d = traced(lab, "a", "n2", "--proto", "udp", "--port", "30054")
        assert [(i["target"], i["direction"]) for i in d["impairments"]] == [("n2:eth0", "reply"),
                                                                             ("n1:cni0", "reply")], d["impairments"]
    finally:
        for target in ("n2:cni0", "n2:eth0", "n1:cni0"):
            netlab("impair", "--lab", lab, target, "--clear", check=False)
