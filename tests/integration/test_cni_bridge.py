"""probe on labs whose pods hang off another bridge than cni0, or none (root, real plugins, real namespaces).

The prober counts the dynamic neighbour entries each probe's packets create and deletes each as soon as no
running probe needs it (probe/budget.py); it used to name the node's side "cni0" whatever the lab, so on a
conflist lab whose bridge is qnbr0 (or a ptp lab, where the node resolves each pod on its own veth) it deleted
none of the node's entries as it went, and held them all until the sweep at the end of the run.
"""

from __future__ import annotations

import ipaddress
import json

import pytest

from helpers import in_netns, ip, ip_json, lab_namespaces, netlab, probe_failures, wait_for, without_turn_waits
from netlab import Lab
from netlab.probe import neighbours as nb
from netlab.probe.matrix import endpoints

pytestmark = pytest.mark.root

TOPOLOGY = """name: {lab}
network: {{mode: vxlan, cni: {{conflist: net.conflist}}}}
nodes: [{{name: n1, podCIDR: 10.244.0.0/24}}, {{name: n2, podCIDR: 10.244.1.0/24}}]
pods:
  - {{name: a, node: n1, labels: {{app: web}}}}
  - {{name: b, node: n1}}
  - {{name: c, node: n2, labels: {{app: web}}}}
services:
  - {{name: web, selector: {{app: web}}, ports: [{{port: 80, targetPort: 8080}}]}}
"""
QNBR = {"type": "bridge", "bridge": "qnbr0", "isGateway": True, "isDefaultGateway": True, "hairpinMode": True,
        "mtu": 1450, "capabilities": {"ipRanges": True, "ips": True}, "ipam": {"type": "host-local"}}
PTP = {"type": "ptp", "mtu": 1450, "ipMasq": False, "capabilities": {"ipRanges": True, "ips": True},
       "ipam": {"type": "host-local", "routes": [{"dst": "0.0.0.0/0"}]}}


def tables(lab: str) -> dict[str, list[tuple]]:
    """Every IPv4 neighbour entry of the lab's namespaces, as the kernel lists them (address and device: a
    dynamic entry's state moves with time), the PERMANENT ones (flannel.1's) and the unresolved ones (INCOMPLETE,
    FAILED: no MAC) with their state."""
    return {ns: sorted(neigh_key(n) for n in ip_json("-4", "neigh", netns=ns)) for ns in lab_namespaces(lab)}


def neigh_key(n: dict) -> tuple:
    states = set(n.get("state", []))
    return n["dst"], n.get("dev"), "PERMANENT" in states, bool({"INCOMPLETE", "FAILED"} & states)


def as_found(before: dict[str, list[tuple]], after: dict[str, list[tuple]]) -> bool:
    """The tables after a probe run as it found them: none of its own entries left, none of the lab's taken;
    but for the unresolved entries it found, which every run deletes first, by design (agent.run:
    neighbours.forget_unresolved: a packet sent behind a given-up entry would fail at once)."""
    return after.keys() == before.keys() and all(
        set(after[ns]) <= set(before[ns]) and {e for e in before[ns] if not e[3]} <= set(after[ns]) for ns in before)


@pytest.mark.parametrize("plugin", [QNBR, PTP], ids=["qnbr0", "ptp"])
def test_probe_deletes_the_nodes_entries_of_a_conflist_lab_as_it_goes(labs, tmp_path, plugin):
    (tmp_path / "net.conflist").write_text(json.dumps({"cniVersion": "1.0.0", "name": f"net-{tmp_path.name}",
                                                       "plugins": [{**plugin, "ipam": {**plugin["ipam"],
                                                                    "dataDir": str(tmp_path / "leases")}}]}))
    lab = labs.name("cb")
    labs.up(TOPOLOGY.format(lab=lab))
    node = f"{lab}-n1"
    devs = {ln["ifname"] for ln in ip_json("link", netns=node)}
    assert ("qnbr0" in devs) == (plugin is QNBR) and "cni0" not in devs

    # The kernel's view of a node talking to its pod: the entry is on the device probe names for it.
    before = tables(lab)
    a_ip = ip_json("-4", "addr", "show", "eth0", netns=f"{lab}-a")[0]["addr_info"][0]["local"]
    assert in_netns(node, "ping", "-c1", "-W2", a_ip).returncode == 0
    (entry,) = ip_json("-4", "neigh", "show", a_ip, netns=node)
    model = Lab.attach(lab).model  # the running lab, as probe reads it
    e = endpoints(model)
    assert (node, entry["dev"], a_ip) in nb.path_entries(model, e["n1"], e["a"])
    for ns in (node, f"{lab}-a"):  # the test's own entries go: probe must find the tables as they were
        for n in ip_json("-4", "neigh", netns=ns):
            if neigh_key(n) not in before[ns]:
                ip("neigh", "del", n["dst"], "dev", n["dev"], netns=ns)
    assert tables(lab) == before
    # An address on n1's underlay link nobody has: the node's resolution of it fails (FAILED, after 3 questions
    # 1 s apart), an entry of the lab's that each run finds unresolved.
    (link,) = [a for a in ip_json("-4", "addr", "show", "eth0", netns=node)[0]["addr_info"]]
    nobody = str(ipaddress.ip_interface(f"{link['local']}/{link['prefixlen']}").network[250])
    in_netns(node, "ping", "-c1", "-W1", nobody)
    assert wait_for(lambda: (nobody, "eth0", False, True) in tables(lab)[node], timeout=10), tables(lab)[node]
    before = tables(lab)

    for arp in ("real", "seeded"):
        proc = netlab("probe", "--lab", lab, "--arp", arp, "-o", "json", check=False)
        data = json.loads(proc.stdout)
        assert proc.returncode == 0 and not without_turn_waits(proc.stderr), proc.stderr + probe_failures(data)
        assert data["summary"]["not_as_expected"] == 0, probe_failures(data)
        assert as_found(before, tables(lab)), (before, tables(lab))  # none of its entries left, none of the lab's taken
        if arp == "real":
            # the prober deleted every entry it caused as it went: none was left for the sweep at the end
            assert data["neighbour_table"]["swept"] == 0, probe_failures(data)
