"""Service probes (issue 4, "probes learn Services") on a real lab (root).

The lab has topologies/services.yaml's shape (two nodes, web-1/web-2 behind a
ClusterIP, a NodePort and a LoadBalancer Service, a client pod, an internet
host) under a unique name, plus a UDP Service, a ClientIP-affinity Service and
a one-endpoint Service (so web-1 reaching it is always hairpin).
"""

from __future__ import annotations

import json
import subprocess
import xml.etree.ElementTree as ET

import pytest

from helpers import in_netns, ip, netlab, probe_failures
from netlab.plan.services import sep_chain
from netlab.probe.sockets import SERVICE_PORTS

pytestmark = pytest.mark.root

TOPOLOGY = """name: {lab}
cluster: {{kubeProxyMode: {mode}}}
network:
  mode: vxlan
  underlay: {{cidr: 192.168.122.0/24, mtu: 1500}}
nodes:
  - {{name: node-1, ip: 192.168.122.2, podCIDR: 10.244.0.0/24}}
  - {{name: node-2, ip: 192.168.122.3, podCIDR: 10.244.1.0/24}}
pods:
  - name: web-1
    node: node-1
    ip: 10.244.0.2
    labels: {{app: web, solo: "yes"}}
    containers:
      - name: http
        ports: [{{containerPort: 8080, protocol: TCP}}, {{containerPort: 5353, protocol: UDP}}]
  - name: web-2
    node: node-2
    ip: 10.244.1.2
    labels: {{app: web}}
    containers:
      - name: http
        ports: [{{containerPort: 8080, protocol: TCP}}, {{containerPort: 5353, protocol: UDP}}]
  - {{name: client, node: node-1, ip: 10.244.0.3}}
services:
  - name: web
    selector: {{app: web}}
    clusterIP: 10.96.0.20
    ports: [{{name: http, port: 80, targetPort: 8080, protocol: TCP}}]
  - name: web-np
    selector: {{app: web}}
    type: NodePort
    ports: [{{name: http, port: 80, targetPort: 8080, nodePort: 30080}}]
  - name: web-lb
    selector: {{app: web}}
    type: LoadBalancer
    loadBalancerIP: 203.0.113.100
    ports: [{{name: http, port: 80, targetPort: 8080, nodePort: 30081}}]
  - name: echo-udp
    selector: {{app: web}}
    clusterIP: 10.96.0.23
    ports: [{{name: dns, port: 53, targetPort: 5353, protocol: UDP}}]
  - name: sticky
    selector: {{app: web}}
    clusterIP: 10.96.0.24
    sessionAffinity: ClientIP
    ports: [{{port: 8080}}]
  - name: solo
    selector: {{solo: "yes"}}
    clusterIP: 10.96.0.25
    ports: [{{port: 8080}}]
internet:
  cidr: 203.0.113.0/24
  gateway: {{ip: 203.0.113.1}}
  hosts:
    - {{name: example, ip: 203.0.113.10}}
"""
NODE_ADDRESSES = {"192.168.122.2", "192.168.122.3", "10.244.0.0", "10.244.0.1", "10.244.1.0", "10.244.1.1"}


def probe(lab: str, *args: str) -> tuple[int, dict]:
    proc = netlab("probe", "--lab", lab, "-o", "json", *args, check=False)
    assert proc.returncode in (0, 1), proc.stderr
    return proc.returncode, json.loads(proc.stdout)


MODES = pytest.mark.parametrize("mode", ["iptables", "nftables"])  # kube-proxy's, cluster.kubeProxyMode


def up(labs, mode: str = "iptables") -> tuple[str, str]:
    lab = labs.name("ps")
    path, _ = labs.up(TOPOLOGY.format(lab=lab, mode=mode))
    return lab, path


def _dnat_from_service_port(line: str) -> bool:
    """A conntrack -L line of a pod's flow from a Service probe's source port whose destination was rewritten
    (its reply comes from another address than the one dialed): what a pod's later direct flow could meet."""
    fields = dict.fromkeys(("src", "dst", "sport"), "")
    words = [w.split("=", 1) for w in line.split() if "=" in w]
    orig = {k: v for k, v in words[:4]}
    reply_src = next((v for k, v in words[4:] if k == "src"), "")
    fields.update(orig)
    port = int(fields["sport"] or 0)
    return fields["src"].startswith("10.244.") and SERVICE_PORTS[0] <= port <= SERVICE_PORTS[1] \
        and reply_src != fields["dst"]


def ip_of(addr: str | None) -> str | None:
    return addr.rsplit(":", 1)[0] if addr else None


def neighbours(lab: str) -> dict[str, list[str]]:
    out = {}
    for who in ("gateway", "example", "node-1", "node-2", "client"):
        ns = f"{lab}-{who}"
        out[ns] = sorted(line.split(" lladdr")[0] for line in ip("neigh", "show", netns=ns).stdout.splitlines())
    return out


def as_found(before: dict[str, list[str]], after: dict[str, list[str]]) -> bool:
    """The tables after a probe run as it found them: none of its own entries left, none of the lab's taken; but
    for the unresolved entries it found (no lladdr: "A dev D FAILED "), which every run deletes first,
    by design (agent.run: neighbours.forget_unresolved: a packet sent behind a given-up entry would fail at once)."""
    return after.keys() == before.keys() and all(
        set(after[ns]) <= set(before[ns]) and {e for e in before[ns] if e.split()[-1] not in ("INCOMPLETE", "FAILED")}
        <= set(after[ns]) for ns in before)


@MODES
def test_service_probes_pass_on_a_healthy_lab(labs, tmp_path, mode):
    lab, _ = up(labs, mode)
    proc = netlab("probe", "--lab", lab, "--junit", str(tmp_path / "junit.xml"), check=False)
    out = proc.stdout
    assert proc.returncode == 0, out + proc.stderr
    lines = out.splitlines()
    for title in ("*** svc/web tcp/80 (ClusterIP 10.96.0.20)",
                  "*** svc/web-np tcp/80 (NodePort 30080 on every node)",
                  "*** svc/web-lb tcp/80 (LoadBalancer 203.0.113.100:80)",
                  "*** svc/echo-udp udp/53 (ClusterIP 10.96.0.23)",
                  ("*** egress tcp/8080 (pods to internet hosts, seen as the gateway 203.0.113.1; each host answers with a "
                   "temporary echo listener)")):
        assert title in lines, out
    j = lines.index("*** svc/web-np tcp/80 (NodePort 30080 on every node)")
    assert lines[j + 1] == "(each cell: the node whose nodePort 30080 the row's client dialed)"
    assert lines[j + 4] == "example -> node-1 node-2"
    assert "5/5 Service distributions as expected" in out  # web, web-np, web-lb, echo-udp, sticky
    assert "*** svc/kube-dns udp/53 (ClusterIP 10.96.0.10)" in lines and " X" not in out  # asked a DNS question
    assert any(line.startswith("cluster DNS: 18/18 answers to A kube-dns.kube-system.svc.cluster.local gave its "
                               "ClusterIP 10.96.0.10") for line in lines), out
    suite = ET.parse(tmp_path / "junit.xml").getroot().find("testsuite")
    assert suite.get("failures") == "0"
    assert len([c for c in suite.findall("testcase") if c.get("classname") == f"{lab}.distribution"]) == 5

    before = neighbours(lab)
    code, data = probe(lab)
    assert code == 0 and data["ok"], probe_failures(data)
    after = neighbours(lab)
    assert as_found(before, after), (before, after)  # the internet side's entries too: probing leaves them as found
    # The kernel's view: no TCP Service flow of the run is left in the nodes' conntrack (closed with RST, each
    # would hold its DNAT there for 10 s, and a next run's flow from the same port to another address of its
    # endpoint would share its reply tuple: conntrack would move that flow to a port of its own choosing).
    for node in ("node-1", "node-2"):
        left = [line for line in in_netns(f"{lab}-{node}", "conntrack", "-L", "-p", "tcp").stdout.splitlines()
                if _dnat_from_service_port(line)]
        assert not left, left[:3]
    recs = data["probes"]
    svc = [r for r in recs if r["service"]]
    # ClusterIP from every pod (4 with kube-dns), 8 ports (kube-dns's two: dnsmasq's 53/UDP asked a DNS
    # question); NodePort 2 ports x 2 nodes x (2 nodes + 1 host); LoadBalancer from the host.
    assert len([r for r in svc if r["service"]["via"] == "ClusterIP"]) == 4 * 8
    assert len([r for r in svc if r["service"]["via"] == "NodePort"]) == 2 * 2 * 3
    assert len([r for r in svc if r["service"]["via"] == "LoadBalancer"]) == 1
    # Where NAT happens, and where it must not.
    for r in svc:
        if not r["answered_by"]:
            continue
        seen = ip_of(r["seen_client_address"])
        assert seen in r["expected_client"], r
        via = r["service"]["via"]
        if via == "ClusterIP" and r["answered_by"] != r["source"]:
            assert seen == ip_of(r["local_address"]), r  # pod to Service to pod: the pod's own address
        elif via in ("NodePort", "LoadBalancer"):
            assert seen in NODE_ADDRESSES and seen != "203.0.113.10", r  # masqueraded by a node, never the host
    # Service flows take their source ports above the namespace's ephemeral range (the kernel's default
    # 32768-60999 in a new namespace); the pod matrix's kernel-chosen ports stay below: a stale conntrack
    # entry of a DNATed Service flow can then never share a reply tuple with a later matrix flow (which
    # conntrack would resolve by translating the matrix flow's source port).
    for r in recs:
        if r["protocol"] == "icmp" or not r["local_address"] or r["local_address"].startswith((":", "0.0.0.0")):
            continue
        port = int(r["local_address"].rsplit(":", 1)[1])
        if r["service"]:
            assert SERVICE_PORTS[0] <= port <= SERVICE_PORTS[1], r
        else:
            assert 32768 <= port <= 60999, r
    hairpin = next(r for r in svc if r["source"] == "web-1" and r["destination"] == "solo")
    assert hairpin["answered_by"] == "web-1" and ip_of(hairpin["seen_client_address"]) == "10.244.0.1"
    egress = [r for r in recs if r["destination"] == "example"]
    assert len(egress) == 2 * 4 and all(r["answered_by"] == "example" for r in egress)
    assert {ip_of(r["seen_client_address"]) for r in egress} == {"203.0.113.1"}  # the gateway's, never a pod's
    udp = [r for r in svc if r["protocol"] == "udp" and r["destination"] == "echo-udp"]
    assert udp and all(r["outcome"] == "reply" and r["answered_by"] in ("web-1", "web-2") for r in udp)
    dns = [r for r in svc if r["protocol"] == "udp" and r["destination"] == "kube-dns"]
    assert len(dns) == 4 and all(r["outcome"] == "reply" and r["dns"]["answer"] == {"rcode": "NOERROR",
                                                                                    "a": ["10.96.0.10"]} for r in dns)
    dists = {d["service"]: d for d in data["distributions"]}
    assert set(dists) == {"web", "web-np", "web-lb", "echo-udp", "sticky"}
    for name in ("web", "web-np", "web-lb", "echo-udp"):
        assert min(dists[name]["endpoints"].values()) >= 50 and sum(dists[name]["endpoints"].values()) == 200
    assert sorted(dists["sticky"]["endpoints"].values()) == [0, 200]
    # The temporary echo listener is gone.
    assert "8080" not in in_netns(f"{lab}-example", "ss", "-lntu").stdout

    code, data = probe(lab, "--no-services")
    assert code == 0 and not data["distributions"]
    assert not [r for r in data["probes"] if r["service"] or r["destination"] == "example"]


@MODES
def test_deleted_dnat_rule_fails_the_run_and_repair_passes_at_once(labs, mode):
    lab, path = up(labs, mode)
    if mode == "nftables":
        _delete_nft_dnat(f"{lab}-node-1", "10.244.1.2:8080")
    else:
        _delete_iptables_dnat(f"{lab}-node-1")

    proc = netlab("probe", "--lab", lab, check=False)
    assert proc.returncode == 1, proc.stdout
    # client (on node-1) loses every connection node-1 sends towards web-2 through Service web.
    assert "svc/web tcp/80 distribution from client: " in proc.stdout
    assert "web-2 served 0 of 200 connections, under half its fair share (50 of 100)" in proc.stdout
    code, data = probe(lab)
    assert code == 1
    web = next(d for d in data["distributions"] if d["service"] == "web")
    assert not web["as_expected"] and web["endpoints"]["web-2"] == 0 and sum(web["failed"].values()) > 50
    assert [d["service"] for d in data["distributions"] if not d["as_expected"]] == ["web"]

    # Repair (up puts the rule back): the very next run passes. The prober deleted its unanswered flows'
    # conntrack entries, so it does not inherit their stale NAT decisions, and its Service flows' source
    # ports never meet the matrix's (see the port check of the healthy-lab test).
    netlab("up", "-t", path)
    code, data = probe(lab)
    assert code == 0, probe_failures(data)


def _delete_iptables_dnat(netns: str) -> None:
    sep = sep_chain("default/web:http", "tcp", "10.244.1.2:8080")
    # As iptables-save prints kube-proxy's rule (its comment quoted).
    rule = ["-p", "tcp", "-m", "comment", "--comment", "default/web:http", "-m", "tcp", "-j", "DNAT",
            "--to-destination", "10.244.1.2:8080"]
    save = in_netns(netns, "iptables-save", "-t", "nat").stdout
    assert f'-A {sep} -p tcp -m comment --comment "default/web:http" -m tcp -j DNAT --to-destination 10.244.1.2:8080' \
        in save
    subprocess.run(["ip", "netns", "exec", netns, "iptables", "-t", "nat", "-D", sep, *rule], check=True)


def _delete_nft_dnat(netns: str, endpoint: str) -> None:
    """Delete the DNAT rule of web's endpoint chain for ``endpoint`` in kube-proxy's table, by its handle."""
    listed = json.loads(in_netns(netns, "nft", "-j", "-a", "list", "table", "ip", "kube-proxy").stdout)["nftables"]
    chain = next(o["chain"]["name"] for o in listed if "chain" in o
                 and o["chain"]["name"].startswith("endpoint-") and "-default/web/tcp/http__" in o["chain"]["name"]
                 and o["chain"]["name"].endswith(endpoint.replace(":", "/")))
    handle = next(o["rule"]["handle"] for o in listed if "rule" in o and o["rule"]["chain"] == chain
                  and any("dnat" in e for e in o["rule"]["expr"]))
    subprocess.run(["ip", "netns", "exec", netns, "nft", "delete", "rule", "ip", "kube-proxy", chain, "handle",
                    str(handle)], check=True)
