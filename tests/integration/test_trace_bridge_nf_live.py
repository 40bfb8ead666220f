"""Every row of a frame a bridge switches says whether br_netfilter hands it to iptables there, on a real lab (root).

Only the row of cni0 handing a frame up to the node's IP layer said it; a pod's packet to a pod of its own node,
switched by cni0 from veth to veth, said nothing of it, although with bridge-nf-call-iptables = 0 in the node no
iptables rule of the node sees that frame. The row says what the node's sysctl says, and the kernel agrees: a
counting rule put in the node's raw PREROUTING for this flow counts the trace's packet with 1 and not with 0.
"""

from __future__ import annotations

import pytest

from helpers import in_netns, lab_up, traced, unique_lab, write_topology

pytestmark = pytest.mark.root

TOPOLOGY = """name: {lab}
nodes: [{{name: n1}}, {{name: n2}}]
pods:
  - {{name: a, node: n1}}
  - {{name: b, node: n1}}
"""
SYSCTL = "net.bridge.bridge-nf-call-iptables"


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    lab = unique_lab("tc")
    path = write_topology(tmp_path_factory.mktemp("brnf"), TOPOLOGY.format(lab=lab), f"{lab}.yaml")
    with lab_up(path, lab):
        yield lab


def _ip(netns: str) -> str:
    return in_netns(netns, "ip", "-4", "-br", "addr", "show", "eth0", check=True).stdout.split()[2].split("/")[0]


def _counted(netns: str, rule: str) -> int:
    for line in in_netns(netns, "iptables-save", "-c", "-t", "raw", check=True).stdout.splitlines():
        if line.endswith(rule):
            return int(line[1:].split(":")[0])
    raise AssertionError(f"no {rule!r} in {netns}'s raw table")


def test_a_frame_switched_pod_to_pod_says_whether_iptables_sees_it(live):
    n1 = f"{live}-n1"
    a, b = _ip(f"{live}-a"), _ip(f"{live}-b")
    rule = f"-A PREROUTING -s {a}/32 -d {b}/32 -p icmp"
    assert in_netns(n1, "sysctl", "-n", SYSCTL, check=True).stdout.strip() == "1"
    in_netns(n1, "iptables", "-t", "raw", "-A", *rule.split()[1:], check=True)
    try:
        for value in ("1", "0"):
            in_netns(n1, "sysctl", "-qw", f"{SYSCTL}={value}", check=True)
            before = _counted(n1, rule)
            rc, d = traced(live, "a", "b")
            assert rc == 0 and d["delivered"], d["lost"]
            [row] = [h for h in d["hops"] if h["kind"] == "bridge" and h["netns"] == n1]
            assert row["decision"].startswith("bridge cni0: FDB: "), row["decision"]
            if value == "1":
                assert "br_netfilter (bridge-nf-call-iptables = 1) runs iptables PREROUTING, FORWARD and " \
                       "POSTROUTING" in row["decision"], row["decision"]
                assert _counted(n1, rule) > before  # the node's iptables saw the bridged frame
            else:
                assert row["decision"].endswith("(bridge-nf-call-iptables = 0: no iptables while bridged)"), \
                    row["decision"]
                assert _counted(n1, rule) == before  # switched past them
            assert f"ip netns exec {n1} sysctl {SYSCTL}" in row["commands"]
    finally:
        in_netns(n1, "sysctl", "-qw", f"{SYSCTL}=1", check=True)
        in_netns(n1, "iptables", "-t", "raw", "-D", *rule.split()[1:], check=True)
