"""Pods attached by Debian's CNI macvlan plugin (bridge mode, master: the node's eth0): no veth, no bridge (root,
real plugins and traffic, two nodes, three pods).

Two pods of one node ping each other: the macvlan driver switches the frame from child to child of n1's eth0
(macvlan_queue_xmit). trace said "LOST ... not a veth of the lab" at the first pod's eth0. And a child cannot
reach its master's own address (its frames go out of eth0 onto the wire, never up into n1): with a route to n1's
address on a pod's eth0, the ping gets no ARP answer, and trace says why.
"""

from __future__ import annotations

import json
import subprocess

import pytest

from helpers import in_netns, ip_json, lab_namespaces, netlab

pytestmark = pytest.mark.root

CONFLIST = {"cniVersion": "1.0.0", "name": "mv-net", "plugins": [
    {"type": "macvlan", "master": "eth0", "mode": "bridge", "capabilities": {"ips": True, "ipRanges": True},
     "ipam": {"type": "host-local", "routes": [{"dst": "0.0.0.0/0"}]}}]}


def _topology(lab: str) -> str:
    return f"""name: {lab}
network: {{cni: {{conflist: mv.conflist}}}}
nodes: [{{name: n1, podCIDR: 10.244.0.0/24}}, {{name: n2, podCIDR: 10.244.1.0/24}}]
pods:
  - {{name: a, node: n1}}
  - {{name: b, node: n1}}
  - {{name: c, node: n2}}
"""


def test_two_macvlan_pods_of_a_node_are_traced_through_the_driver(labs, tmp_path):
    from netlab.api import load

    (tmp_path / "mv.conflist").write_text(json.dumps(CONFLIST))
    lab = labs.name("mv")
    path, _ = labs.up(_topology(lab))
    model = load(path).lab
    a, b, n1 = f"{lab}-a", f"{lab}-b", model.node("n1")
    [eth0] = [link for link in ip_json("-d", "link", "show", "eth0", netns=a)]
    assert eth0["linkinfo"]["info_kind"] == "macvlan" and eth0["linkinfo"]["info_data"]["mode"] == "bridge", eth0
    assert in_netns(a, "ping", "-c1", "-W2", str(model.pod("b").ip), check=False).returncode == 0

    proc = netlab("trace", "--lab", lab, "a", "b", "-o", "json", check=False, timeout=60)
    d = json.loads(proc.stdout)
    assert proc.returncode == 0 and d["delivered"] and d["reply_received"], proc.stdout
    [mv] = [h for h in d["hops"] if h["kind"] == "macvlan"]
    assert (mv["netns"], mv["facts"]["lower"], mv["facts"]["lower_netns"], mv["facts"]["to_netns"]) == \
        (a, "eth0", n1.netns, b), mv
    assert "bridge mode" in mv["decision"] and "never seen on eth0" in mv["decision"], mv

    # a route to n1's own address on a's eth0: the child's ARP requests leave by n1's eth0, n1 never hears them
    node_ip = str(n1.ip)
    in_netns(a, "ip", "route", "add", f"{node_ip}/32", "dev", "eth0", check=True)
    assert in_netns(a, "ping", "-c1", "-W1", node_ip, check=False).returncode != 0
    proc = netlab("trace", "--lab", lab, "a", "n1", "-o", "json", check=False, timeout=60)
    d = json.loads(proc.stdout)
    assert proc.returncode == 1 and not d["delivered"], proc.stdout
    assert "a macvlan child cannot reach it" in d["hops"][-1]["problem"], d["hops"][-1]
    netlab("down", "--lab", lab)
    assert not lab_namespaces(lab)


def test_vepa_pods_of_a_node_get_no_arp_answer_without_hairpin_on_the_underlay_port(labs, tmp_path):
    """vepa mode: the driver sends every frame of a child, the ARP request for a sibling child too, out of n1's eth0
    for the switch to send back; the underlay's br0 sends no frame back out of the port it came in by unless that
    port is in hairpin mode. trace blamed "nothing on that link answers for 10.244.0.3 (b)" (qa-q54 #3)."""
    from netlab.api import load

    vepa = json.loads(json.dumps(CONFLIST))
    vepa["plugins"][0]["mode"] = "vepa"
    (tmp_path / "mv.conflist").write_text(json.dumps(vepa))
    lab = labs.name("mv")
    path, _ = labs.up(_topology(lab))
    model = load(path).lab
    a, b, underlay, b_ip = f"{lab}-a", f"{lab}-b", f"{lab}-underlay", str(model.pod("b").ip)
    a_ip = str(model.pod("a").ip)
    # n1's eth0's veth peer: the underlay's port whose ifindex n1's eth0 names as its link
    [eth0] = ip_json("link", "show", "eth0", netns=f"{lab}-n1")
    [port] = [lk["ifname"] for lk in ip_json("link", "show", netns=underlay) if lk["ifindex"] == eth0["link_index"]]
    [info] = ip_json("-d", "link", "show", "dev", port, netns=underlay)
    assert info["linkinfo"]["info_slave_data"]["hairpin"] is False, info
    assert in_netns(a, "ping", "-c1", "-W1", b_ip, check=False).returncode != 0
    proc = netlab("trace", "--lab", lab, "a", "b", "-o", "json", check=False, timeout=60)
    assert not [n for n in ip_json("neigh", "show", a_ip, netns=b) if n.get("lladdr")]  # b never heard a's ARP
    d = json.loads(proc.stdout)
    assert proc.returncode == 1 and not d["delivered"], proc.stdout
    last = d["hops"][-1]
    assert (last["netns"], last["kind"]) == (a, "neigh") and d["lost"]["hop"] == last["index"], last
    assert "nothing on that link answers" not in last["problem"], last["problem"]
    assert f"{b_ip} is pod b's eth0, a macvlan of n1's eth0 too; in vepa mode" in last["problem"], last["problem"]
    assert f"bridge br0 in {underlay} sends no frame back out of {port}, the port it came in by" in last["problem"]
    assert d["lost"]["fix"] == f"bridge -n {underlay} link set dev {port} hairpin on", d["lost"]
    text = netlab("trace", "--lab", lab, "a", "b", check=False, timeout=60).stdout
    assert "which repairs the lab" not in text, text  # up turns the underlay's hairpin off again: no repair
    # the fix, as trace words it: the bridge sends the request back, b answers, the ping gets through
    subprocess.run(d["lost"]["fix"].split(), check=True, timeout=10)
    assert in_netns(a, "ping", "-c1", "-W2", b_ip, check=False).returncode == 0
    # b heard a's ARP request now (its kernel keeps an entry for the asker), which it never did before
    assert [n for n in ip_json("neigh", "show", a_ip, netns=b) if n.get("lladdr")], ip_json("neigh", netns=b)
