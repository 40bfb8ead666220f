"""SCTP ports of a NetworkPolicy, enforced by the real kernel (root, one small lab).

A policy's SCTP port wrote no rule (plan/policy.py skipped SCTP), so the SCTP the policy allowed was REJECTed by
its pod's default deny. Now it is an ``-p sctp -m sctp --dport`` rule as for TCP and UDP. This machine's kernel
has no SCTP sockets (no /proc/net/sctp), so the traffic is an SCTP INIT with a valid CRC32c sent from a raw
socket (scapy builds it). A pod's kernel without SCTP answers an INIT that reaches it with ICMP "protocol
unreachable" from the pod's own address (one with SCTP: an ABORT, as no one listens); the policy's REJECT
answers "port unreachable" from the node. Both are told apart, and the rules' counters (``iptables-save -c``)
say which rule took the packet.
"""

from __future__ import annotations

import json
import re
import sys

import pytest

from helpers import in_netns, lab_namespaces, unique_lab
from netlab import Lab
from netlab.kernel.iptables import save as iptables_save

POLICIES = [
    # a's ingress: SCTP 9 and 20-22 from anyone; nothing else
    {"name": "a-sctp", "namespace": "x",
     "spec": {"podSelector": {"matchLabels": {"app": "a"}},
              "ingress": [{"ports": [{"protocol": "SCTP", "port": 9},
                                     {"protocol": "SCTP", "port": 20, "endPort": 22}]}]}},
    # b's egress: SCTP 9 and 21 only (and DNS-less: nothing else)
    {"name": "b-out", "namespace": "x",
     "spec": {"podSelector": {"matchLabels": {"app": "b"}}, "policyTypes": ["Egress"],
              "egress": [{"ports": [{"protocol": "SCTP", "port": 9}, {"protocol": "SCTP", "port": 21}]}]}},
]


def topology(name: str) -> dict:
    return {
        "name": name,
        "nodes": [{"name": "n1"}, {"name": "n2"}],
        "namespaces": [{"name": "x"}],
        "pods": [{"name": "a", "namespace": "x", "node": "n1", "labels": {"app": "a"}},
                 {"name": "b", "namespace": "x", "node": "n2", "labels": {"app": "b"}},
                 {"name": "c", "namespace": "x", "node": "n1", "labels": {"app": "c"}}],
        "networkPolicies": POLICIES,
    }


# Run in the client pod: one SCTP INIT from a raw socket, then the first ICMP error (or SCTP packet) about it.
SEND_INIT = r"""
import json, select, socket, struct, sys, time
from scapy.layers.sctp import SCTP, SCTPChunkInit
dst, port = sys.argv[1], int(sys.argv[2])
icmp = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
sctp = socket.socket(socket.AF_INET, socket.SOCK_RAW, 132)
pkt = bytes(SCTP(sport=40000 + port, dport=port, tag=0) / SCTPChunkInit(init_tag=0x1234, a_rwnd=65535, n_out_streams=1,
                                                                          n_in_streams=1, init_tsn=1))
sctp.sendto(pkt, (dst, 0))
end = time.monotonic() + 3
while time.monotonic() < end:
    ready, _, _ = select.select([icmp, sctp], [], [], max(0.0, end - time.monotonic()))
    for s in ready:
        data, (src, _) = s.recvfrom(2048)
        ihl = (data[0] & 15) * 4
        if s is sctp:
            if struct.unpack("!H", data[ihl:ihl + 2])[0] == port:  # the peer's SCTP answer (an ABORT)
                print(json.dumps({"from": src, "sctp": data[ihl + 12]})); sys.exit()
            continue
        kind, code = data[ihl], data[ihl + 1]
        inner = data[ihl + 8:]
        if len(inner) < 24 or inner[9] != 132:
            continue
        iihl = (inner[0] & 15) * 4
        if struct.unpack("!H", inner[iihl + 2:iihl + 4])[0] == port:
            print(json.dumps({"from": src, "icmp": [kind, code]})); sys.exit()
print(json.dumps({}))
"""


def send_init(lab: str, src: str, dst_ip: str, port: int) -> dict:
    proc = in_netns(f"{lab}-{src}", sys.executable, "-c", SEND_INIT, dst_ip, str(port))
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def reached(answer: dict, dst_ip: str) -> bool:
    """The INIT reached the pod: its kernel answered, with "protocol unreachable" (no SCTP) or SCTP itself."""
    return answer.get("from") == dst_ip and (answer.get("icmp") == [3, 2] or "sctp" in answer)


def rejected(answer: dict, dst_ip: str) -> bool:
    """A node's policy REJECT answered: "port unreachable", not from the pod."""
    return answer.get("icmp") == [3, 3] and answer.get("from") != dst_ip


def counters(netns: str, pattern: str) -> int:
    """Packets the filter rules matching ``pattern`` counted."""
    out = 0
    for line in iptables_save(netns, "filter", counters=True).splitlines():
        m = re.match(r"^\[(\d+):\d+\] (.*)$", line)
        if m and re.search(pattern, m.group(2)):
            out += int(m.group(1))
    return out


@pytest.mark.root
def test_sctp_ports_of_a_policy_allow_sctp_and_the_rest_is_rejected():
    name = unique_lab("sc")
    lab = Lab.up(topology(name))
    try:
        assert lab.status().ok, lab.status().drift  # iptables-save prints the SCTP rules as planned
        n1, n2 = f"{name}-n1", f"{name}-n2"
        rules = iptables_save(n1, "filter")
        assert re.search(r"-p sctp -m sctp --dport 9 .*x/a-sctp ingress rule 1 any peer", rules), rules
        assert re.search(r"-p sctp -m sctp --dport 20:22 .*x/a-sctp ingress rule 1 any peer", rules), rules
        a_ip = str(lab.model.pod("a").ip)
        allow9 = r"-p sctp -m sctp --dport 9 .*x/a-sctp ingress"
        allow_range = r"-p sctp -m sctp --dport 20:22 .*x/a-sctp ingress"
        reject_a = r"x/a ingress: no rule of x/a-sctp allows it\" -j REJECT"
        reject_b = r"x/b egress: no rule of x/b-out allows it\" -j REJECT"

        # c, a's neighbour on n1 (bridged through cni0, judged through br_netfilter), no egress policy
        before = counters(n1, allow9), counters(n1, allow_range), counters(n1, reject_a)
        assert reached(got := send_init(name, "c", a_ip, 9), a_ip), got
        assert reached(got := send_init(name, "c", a_ip, 21), a_ip), got
        assert rejected(got := send_init(name, "c", a_ip, 10), a_ip), got
        assert rejected(got := send_init(name, "c", a_ip, 23), a_ip), got
        after = counters(n1, allow9), counters(n1, allow_range), counters(n1, reject_a)
        assert [y - x for x, y in zip(before, after)] == [1, 1, 2]

        # b on n2: its egress allows SCTP 9 and 21 (then a's ingress on n1 judges); 10 and 22 stop at n2
        before = counters(n1, allow9), counters(n1, allow_range), counters(n2, reject_b)
        assert reached(got := send_init(name, "b", a_ip, 9), a_ip), got
        assert reached(got := send_init(name, "b", a_ip, 21), a_ip), got
        assert rejected(got := send_init(name, "b", a_ip, 10), a_ip), got
        assert rejected(got := send_init(name, "b", a_ip, 22), a_ip), got
        after = counters(n1, allow9), counters(n1, allow_range), counters(n2, reject_b)
        assert [y - x for x, y in zip(before, after)] == [1, 1, 2]
    finally:
        lab.down()
    assert not lab_namespaces(name)
