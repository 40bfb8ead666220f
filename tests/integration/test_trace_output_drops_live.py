"""A DROP in a pod's own OUTPUT chain, put there by hand (root): the sending pod's drops the request as it leaves,
the destination pod's drops the reply. trace names the rule with the `iptables -D` that takes it out (as it
names a DROP in the destination's INPUT), the connection fails while it is there and works once the fix ran.
"""

from __future__ import annotations

import subprocess

import pytest

from helpers import in_netns, lab_up, traced, unique_lab, write_topology

pytestmark = pytest.mark.root

TOPOLOGY = """name: {lab}
nodes: [{{name: n1}}, {{name: n2}}]
pods:
  - {{name: web, node: n1}}
  - {{name: c, node: n2}}
"""


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    lab = unique_lab("tro")
    path = write_topology(tmp_path_factory.mktemp("out"), TOPOLOGY.format(lab=lab), f"{lab}.yaml")
    with lab_up(path, lab):
        yield {"name": lab, "path": path, "c": f"{lab}-c", "web": f"{lab}-web",
               "ip": in_netns(f"{lab}-web", "ip", "-4", "-br", "addr", "show", "eth0",
                              check=True).stdout.split()[2].split("/")[0]}


def curl(live) -> int:
    return in_netns(live["c"], "curl", "-s", "-m", "2", f"http://{live['ip']}:8080/", timeout=10).returncode


@pytest.mark.parametrize("side", ["request", "reply"])
def test_a_drop_in_a_pods_output_is_named_and_its_fix_brings_the_connection_back(repaired, side):
    lab, ip = repaired["name"], repaired["ip"]
    assert curl(repaired) == 0
    if side == "request":  # the client's own firewall drops its SYN
        ns, rule = repaired["c"], ["-d", f"{ip}/32", "-p", "tcp", "-m", "tcp", "--dport", "8080", "-j", "DROP"]
    else:  # the server's own firewall drops its answers
        ns, rule = repaired["web"], ["-s", f"{ip}/32", "-p", "tcp", "-m", "tcp", "--sport", "8080", "-j", "DROP"]
    in_netns(ns, "iptables", "-A", "OUTPUT", *rule, check=True)
    assert curl(repaired) != 0
    rc, d = traced(lab, "c", "web", "--port", "8080")
    lost = d["lost"] if side == "request" else d["reply_lost"]
    assert rc == 1 and lost is not None and lost["netns"] == ns and lost["hop"] == 1, (d["lost"], d["reply_lost"])
    assert d["delivered"] is (side == "reply"), d["lost"]
    who = "pod c" if side == "request" else "pod web"
    assert lost["reason"].startswith(f"a rule netlab did not write in {who}'s filter chain OUTPUT dropped the "
                                     f"packet on its way out"), lost["reason"]
    assert f"`-A OUTPUT {' '.join(rule)}`" in lost["reason"]
    assert lost["fix"] == f"ip netns exec {ns} iptables -D OUTPUT {' '.join(rule)}", lost["fix"]
    if side == "request":  # nothing after the source is blamed: the packet never left
        assert [h["index"] for h in d["hops"] if h.get("problem")] == [1], [h for h in d["hops"] if h.get("problem")]
    subprocess.run(["bash", "-c", lost["fix"]], check=True)
    assert "-j DROP" not in in_netns(ns, "iptables-save", "-t", "filter", check=True).stdout
    assert curl(repaired) == 0
    rc, d = traced(lab, "c", "web", "--port", "8080")
    assert rc == 0 and d["delivered"] and d["reply_received"], (d["lost"], d["reply_lost"])
