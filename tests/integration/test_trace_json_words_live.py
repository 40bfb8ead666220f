"""trace -o json in the words docs/json.md gives, on a real lab (root): a lab with an internet host and a
LoadBalancer Service, its pods on two nodes joined by VXLAN (QA q43 1 and 3).

1. An internet host's packet to the LoadBalancer IP: the internet's gateway routes it to a node untranslated (a
   passthrough balancer), whose kube-proxy DNATs it to the endpoint. trace's `endpoint.via` once said "NodePort",
   probe's `service.via` "LoadBalancer" for the same flow; json.md: `via` is the Service's address the packet was
   sent to, in probe's words. It says LoadBalancer, and the gateway's route row names its multipath hops.
2. A pod's packet to a pod of the other node: the fdb row's facts said `lladdr` and `remote_vtep`, the bridge rows'
   `lladdr`; json.md: a trace hop's facts say an FDB entry's `mac` and `dst`, as `bridge -j fdb` does. They do (the
   old keys beside them, the same value, for one release), and they are what `bridge -j fdb` shows in that node.
"""

from __future__ import annotations

import json
import subprocess

import pytest

from helpers import ip_json, lab_up, netlab, traced, unique_lab, write_topology
from test_trace_lb_ip_live import LB, NODE_PORT, TOPOLOGY as LB_TOPOLOGY

pytestmark = pytest.mark.root

# test_trace_lb_ip_live's lab (a LoadBalancer Service to web on n1, pod c on n2, the internet's client), in
# kube-proxy's default mode
TOPOLOGY = LB_TOPOLOGY.replace("{mode}", "iptables")


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    name = unique_lab("js")
    path = write_topology(tmp_path_factory.mktemp("jsw"), TOPOLOGY.format(lab=name, lb=LB, np=NODE_PORT),
                          f"{name}.yaml")
    with lab_up(path, name):
        yield name


def _addr(netns: str, dev: str) -> str:
    return ip_json("-4", "addr", "show", dev, netns=netns)[0]["addr_info"][0]["local"]


def test_a_trace_to_the_load_balancer_ip_says_via_loadbalancer_as_probe_does(lab):
    rc, d = traced(lab, "client", "svc/web-lb", "--port", "80")
    assert rc == 0 and d["delivered"] and d["destination"]["ip"] == LB, (d["lost"], d["destination"])
    [row] = [h for h in d["hops"] if h["kind"] == "dnat"]  # the node's alone: nothing translated it on the way
    node = row["netns"]
    assert row["decision"].startswith(f"DNAT {LB}:80 → "), row["decision"]  # what the node's kube-proxy DNATed
    assert d["endpoint"]["via"] == row["facts"]["via"] == "LoadBalancer", (d["endpoint"], row["facts"])
    assert "node_port" not in row["facts"], row["facts"]
    [route] = [h for h in d["hops"] if h["kind"] == "route" and h["netns"] == f"{lab}-gateway"]
    assert route["facts"]["gateway"] == _addr(node, "eth0") and route["facts"]["gateway"] in route["facts"]["hops"]
    # probe's word for the same flow (an internet host to the LoadBalancer IP)
    proc = netlab("probe", "--lab", lab, "-o", "json", check=False, timeout=300)
    report = json.loads(proc.stdout)
    [lb_probe] = [p for p in report["probes"] if p["source"] == "client" and p["destination_ip"] == LB
                  and p["protocol"] == "tcp" and p["port"] == 80]
    assert lb_probe["service"]["via"] == d["endpoint"]["via"], lb_probe["service"]
    # and the text says the same: the LoadBalancer IP, DNATed at the node
    text = netlab("trace", "--lab", lab, "client", "svc/web-lb", "--port", "80", timeout=60).stdout
    result = next(line for line in text.splitlines() if line.startswith("result: "))
    assert f"svc/web-lb's LoadBalancer IP {LB}:80 DNATed to " in result, result
    assert "nodePort" not in result, result


def test_the_fdb_and_bridge_rows_facts_say_bridge_fdbs_mac_and_dst(lab):
    peer_ip = _addr(f"{lab}-c", "eth0")
    rc, d = traced(lab, "web", peer_ip)
    assert rc == 0 and d["delivered"], d["lost"]
    [fdb] = [h for h in d["hops"] if h["kind"] == "fdb"]
    f = fdb["facts"]
    assert f["mac"] == f["lladdr"] and f["dst"] == f["remote_vtep"], f  # the old keys beside, one release
    keys = list(f)
    assert keys[keys.index("mac") + 1] == "lladdr" and keys[keys.index("dst") + 1] == "remote_vtep", keys
    shown = json.loads(subprocess.run(["bridge", "-n", fdb["netns"], "-j", "fdb", "show", "dev", fdb["device"]],
                                      capture_output=True, text=True, check=True).stdout)
    assert {"mac": f["mac"], "dst": f["dst"]} in [{"mac": e["mac"], "dst": e.get("dst")} for e in shown], shown
    assert f["dst"] == _addr(f"{lab}-n2", "eth0")  # the remote VTEP: n2, where c runs
    bridges = [h["facts"] for h in d["hops"] if h["kind"] == "bridge" and "port" in h["facts"]]
    assert bridges and all(b["mac"] == b["lladdr"] for b in bridges), bridges
