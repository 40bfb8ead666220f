"""trace names a ptp pod's node route that is gone (root, Debian's ptp plugin, a chain without CHECK).

ptp puts no bridge on the node: the node reaches each pod by a route of its own through the pod's host veth
(``10.244.0.2 dev vethX scope host``). Deleted, status names it (test_cni_ptp_node_route_live.py), but trace to the
pod followed the packet out of the node's default route and lost it at the underlay, blaming the underlay's
ip_forward 0 "as the lab plans it": nothing named the node's missing route, the pod, or the `ip route` that puts
it back. Now the node's route row names them, and the loss (where the packet dies) says it came there because of
it, with that command as its fix; `up` re-attaches the pod, which makes the route again. The route is deleted
through netlink (pyroute2) in the node's namespace, as a hand's `ip route del` does.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from helpers import ip_json, ipv4_of, netlab, write_topology

pytestmark = pytest.mark.root

CONFLIST = {"cniVersion": "0.3.1", "name": "ptpnet", "plugins": [
    {"type": "ptp", "ipMasq": False, "ipam": {"type": "host-local", "routes": [{"dst": "0.0.0.0/0"}]},
     "capabilities": {"ipRanges": True}}]}


def _route_to(node: str, address: str) -> list[dict]:
    return [r for r in ip_json("route", netns=node) if r["dst"] == address]


# pyroute2 in a process of its own: its NetNS forks a child that enters the namespace and hands back the socket,
# and a fork of pytest's process runs pytest's exit hooks in the node's namespace
DEL_ROUTE = """
import sys
from pyroute2 import NetNS
netns, address, dev = sys.argv[1:]
with NetNS(netns, flags=0) as ns:
    [index] = ns.link_lookup(ifname=dev)
    ns.route("del", dst=f"{address}/32", oif=index, scope=254, table=254)  # scope host, as ptp made it
"""


def _del_route(netns: str, address: str, dev: str) -> None:
    """``ip route del ADDRESS/32 dev DEV scope host`` in ``netns``, through pyroute2 (flags 0: it makes no
    namespace)."""
    subprocess.run([sys.executable, "-c", DEL_ROUTE, netns, address, dev], check=True, timeout=30)


def _trace(lab: str, src: str, dst: str, *args: str):
    return netlab("trace", "--lab", lab, src, dst, *args, check=False, timeout=60)


def test_trace_names_a_ptp_pods_missing_node_route_and_up_makes_it_again(labs):
    lab = labs.name("cr")
    (labs.tmp_path / "ptp.conflist").write_text(json.dumps(CONFLIST))
    path = write_topology(labs.tmp_path, f"name: {lab}\nnetwork: {{mode: vxlan, cni: {{conflist: ./ptp.conflist}}}}\n"
                          "nodes: [{name: n1}, {name: n2}]\n"
                          "pods: [{name: a, node: n1}, {name: b, node: n1}, {name: c, node: n2}]\n", "t.yaml")
    netlab("up", "-t", path)
    n1, a_ip = f"{lab}-n1", ipv4_of(f"{lab}-a", "eth0")
    assert _trace(lab, "c", "a").returncode == 0
    [route] = _route_to(n1, a_ip)
    veth = route["dev"]
    _del_route(n1, a_ip, veth)
    assert not _route_to(n1, a_ip)

    said = f"no route to pod a's {a_ip} in {n1} through its veth {veth}: the node reaches the pod by that route alone"
    fix = f"ip -n {n1} route add {a_ip}/32 dev {veth} scope host"
    text = _trace(lab, "c", "a")
    assert text.returncode == 1, text.stdout
    lines = text.stdout.splitlines()
    at = next(i for i, line in enumerate(lines) if f" {n1} " in line and "matched: default" in line)
    assert lines[at + 1].strip().startswith(f"!! {said}"), lines[at:at + 2]
    assert f"`{fix}` puts it back; up re-attaches pod a, which makes it again" in lines[at + 1], lines[at + 1]
    result = next(line for line in lines if line.startswith("result: "))
    assert result.startswith("result: LOST at hop ") and f"it came here because {said}" in result, result
    assert f"  fix: {fix}" in text.stdout, text.stdout

    for src in ("c", "b"):  # from the other node, and from a pod of the same node
        d = json.loads(_trace(lab, src, "a", "-o", "json").stdout)
        assert not d["delivered"] and not d["ok"], d["lost"]
        assert f"it came here because {said}" in d["lost"]["reason"] and d["lost"]["fix"] == fix, d["lost"]
        [hop] = [h for h in d["hops"] if (h.get("problem") or "").startswith(said)]
        assert (hop["netns"], hop["device"], hop["fix"]) == (n1, "eth0", fix), hop

    up = netlab("up", "-t", path)
    assert "re-attached pod a through CNI (it differs from its chain's cached ADD result: the node has no route to " \
           "the pod's" in up.stdout, up.stdout
    a_ip = ipv4_of(f"{lab}-a", "eth0")
    [again] = _route_to(n1, a_ip)
    assert again["dev"].startswith("veth") and again["scope"] == "host", again
    for src in ("c", "b"):
        proc = _trace(lab, src, "a")
        assert proc.returncode == 0 and "!!" not in proc.stdout, proc.stdout
    assert netlab("status", "--lab", lab).returncode == 0
