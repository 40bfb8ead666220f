"""probe dials a Service's externalIPs (probe/services.py external_ip_probes): from every pod and node, which their
own node DNATs, and from every internet host, which the lab's gateway routes to the first node; the client address
each endpoint must see follows externalTrafficPolicy as kube-proxy's KUBE-EXT chain does (no root)."""

from __future__ import annotations

from test_services_plan import lab_of

from netlab.probe import service_paths
from netlab.probe.neighbours import Entry
from netlab.probe.services import build

TOPO = {
    "name": "xp",
    "nodes": [{"name": "n1"}, {"name": "n2"}],
    "internet": {"cidr": "203.0.113.0/24", "gateway": {"ip": "203.0.113.1"}, "hosts": [{"name": "example", "ip": "203.0.113.9"}]},
    "pods": [{"name": "client", "node": "n1"}, {"name": "web", "node": "n2", "labels": {"app": "web"}}],
    "services": [{"name": "web", "externalIPs": ["192.168.99.33"], "selector": {"app": "web"},
                  "ports": [{"port": 80, "targetPort": 8080}]}],
}


def ext_probes(topo: dict) -> dict[str, object]:
    lab = lab_of(topo)
    return lab, {p.source.name: p for p in build(lab, ("tcp",)).probes if p.svc is not None
                 and p.svc.kind == "ExternalIP"}


def test_every_pod_node_and_internet_host_dials_the_external_ip_and_the_node_that_takes_it_masquerades():
    lab, probes = ext_probes(TOPO)
    assert set(probes) == {"client", "web", "n1", "n2", "example"}
    assert all(p.expected and p.destination.addr == "192.168.99.33" and p.port == 80 for p in probes.values())
    n1, n2 = lab.node("n1"), lab.node("n2")
    seen = {src: p.rules[0].allowed for src, p in probes.items()}
    # the pod's own node, the node itself, the first node for the internet host (the gateway's route)
    assert seen == {"client": (str(n1.vtep_ip),), "web": (str(n2.gateway.ip),), "n1": (str(n1.vtep_ip),),
                    "n2": (str(n2.gateway.ip),), "example": (str(n1.vtep_ip),)}
    p = probes["example"]
    assert p.svc.to_json()["via"] == "ExternalIP"
    assert p.section == "svc/web tcp/80 (externalIP 192.168.99.33:80)"
    gw = dict(lab.internet_hosts)["gateway"]
    assert Entry(gw, "eth0", str(n1.ip)) in service_paths.path_entries(lab, p)


def test_local_keeps_the_clients_address_and_the_first_node_without_an_endpoint_drops_the_internet_host():
    topo = {**TOPO, "services": [{**TOPO["services"][0], "externalTrafficPolicy": "Local"}]}
    lab, probes = ext_probes(topo)
    client = lab.pod("client")
    assert probes["client"].expected and probes["client"].rules[0].allowed == (str(client.ip),)
    assert probes["n1"].expected and probes["n1"].rules[0].allowed == (str(lab.node("n1").vtep_ip),)
    assert not probes["example"].expected and "no endpoint on n1" in probes["example"].reason
    # an endpoint on the first node: the internet host's own address
    topo["pods"] = [{**p, "node": "n1"} if p["name"] == "web" else p for p in topo["pods"]]
    lab, probes = ext_probes(topo)
    assert probes["example"].expected and probes["example"].rules[0].allowed == (probes["example"].source.addr,)


def test_local_to_an_endpoint_on_the_clients_bridge_counts_the_clients_entry_for_it():
    """externalTrafficPolicy Local from a pod: not masqueraded, the endpoint answers the client straight over the
    bridge, and its ARP request for the client leaves the client an entry for it (one curl after a flush, `ip -n
    L-a neigh`: 10.244.0.3 STALE), which the run did not count: the final sweep's (rev62)."""
    topo = {**TOPO, "services": [{**TOPO["services"][0], "externalTrafficPolicy": "Local"}],
            "pods": [{**p, "node": "n1"} for p in TOPO["pods"]]}
    lab, probes = ext_probes(topo)
    client, web = lab.pod("client"), lab.pod("web")
    e = set(service_paths.path_entries(lab, probes["client"]))
    assert {Entry(web.netns, "eth0", str(client.ip)), Entry(client.netns, "eth0", str(web.ip))} <= e
