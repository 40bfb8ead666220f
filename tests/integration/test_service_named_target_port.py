"""A Service's named targetPort on a real lab (root), in both kube-proxy modes: each pod that declares the name is
an endpoint at its own number, as the EndpointSlice controller resolves it, and kube-proxy's rule for each endpoint
DNATs to that pod's port.

web-a serves "http" on 8080 (node n1), web-b on 9090 (node n2); web-c is selected but declares no "http" (it
serves 8080 unnamed: a connection that reached it would be answered, so it must never be picked); "grpc" is a
name no pod declares, so that port has no endpoints and kube-proxy rejects it.
"""

from __future__ import annotations

import json

import pytest

from helpers import in_netns, netlab, probe_failures

pytestmark = pytest.mark.root

TOPOLOGY = """name: {lab}
cluster: {{kubeProxyMode: {mode}}}
nodes: [{{name: n1}}, {{name: n2}}]
pods:
  - name: web-a
    node: n1
    labels: {{app: web}}
    containers: [{{name: c, ports: [{{containerPort: 8080, name: http}}]}}]
  - name: web-b
    node: n2
    labels: {{app: web}}
    containers: [{{name: c, ports: [{{containerPort: 9090, name: http}}]}}]
  - {{name: web-c, node: n2, labels: {{app: web}}, containers: [{{name: c, ports: [{{containerPort: 8080}}]}}]}}
  - {{name: client, node: n1}}
services:
  - name: web
    selector: {{app: web}}
    clusterIP: 10.96.0.40
    ports: [{{name: http, port: 80, targetPort: http}}, {{name: grpc, port: 81, targetPort: grpc}}]
"""

# Connects ADDR:PORT n times, each from a new source port; prints the echo server's reply or the error, one a line.
CONNECT = """
import json, socket, sys
for _ in range(int(sys.argv[3])):
    try:
        s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=3)
        s.sendall(b"hi\\n")
        reply = json.loads(s.recv(4096))
        print(reply["pod"], reply["server"])
        s.close()
    except OSError as exc:
        print(type(exc).__name__, "-")
"""


def connects(netns: str, address: str, port: int, n: int) -> set[tuple[str, str]]:
    out = in_netns(netns, "python3", "-c", CONNECT, address, str(port), str(n), check=True).stdout
    return {tuple(line.split()) for line in out.splitlines()}  # type: ignore[misc]


@pytest.mark.parametrize("mode", ["iptables", "nftables"])
def test_each_endpoint_is_reached_at_its_own_pods_port(labs, mode):
    lab = labs.name("nsv")
    labs.up(TOPOLOGY.format(lab=lab, mode=mode))
    ips = {p["name"]: p["ip"] for p in json.loads(netlab("get", "pods", "--lab", lab, "-o", "json").stdout)["items"]}
    a, b = f"{ips['web-a']}:8080", f"{ips['web-b']}:9090"

    # Real connections to the ClusterIP reach both endpoints, each on its own number, and never web-c (30
    # connections all to one endpoint: 2 in a billion); the name nobody declares is refused.
    assert connects(f"{lab}-client", "10.96.0.40", 80, 30) == {("web-a", a), ("web-b", b)}
    assert connects(f"{lab}-client", "10.96.0.40", 81, 2) == {("ConnectionRefusedError", "-")}

    # The kernel's rules: each endpoint's DNAT to its own pod's port, on every node; none to web-c.
    for node in ("n1", "n2"):
        if mode == "iptables":
            save = in_netns(f"{lab}-{node}", "iptables-save", check=True).stdout
            dnats = {line.split("--to-destination ")[1] for line in save.splitlines()
                     if "-j DNAT" in line and '"default/web:' in line}  # not kube-dns's
            assert dnats == {a, b}, save
            assert '-A KUBE-SERVICES -d 10.96.0.40/32 -p tcp -m comment --comment "default/web:grpc has no ' \
                'endpoints" -m tcp --dport 81 -j REJECT' in save
        else:
            table = json.loads(in_netns(f"{lab}-{node}", "nft", "-j", "list", "ruleset", check=True).stdout)
            dnats = {f"{e['dnat']['addr']}:{e['dnat']['port']}" for o in table["nftables"]
                     if "rule" in o and "default/web/" in o["rule"]["chain"]  # not kube-dns's
                     for e in o["rule"]["expr"] if "dnat" in e}
            assert dnats == {a, b}, dnats

    # trace follows one connection through its DNAT to the endpoint's own port.
    proc = netlab("trace", "--lab", lab, "client", "svc/web", "--port", "80", "-o", "json", check=False, timeout=60)
    d = json.loads(proc.stdout)
    assert proc.returncode == 0 and d["delivered"], proc.stdout
    ep = d["endpoint"]
    assert f"{ep['endpoint_ip']}:{ep['endpoint_port']}" == {"web-a": a, "web-b": b}[ep["endpoint"]], ep
    dnat = next(h for h in d["hops"] if h["kind"] == "dnat")
    assert dnat["facts"]["after"].split(" → ")[1].startswith(f"{ep['endpoint_ip']}:{ep['endpoint_port']} "), dnat
    assert d["hops"][-1]["netns"] == f"{lab}-{ep['endpoint']}" and d["hops"][-1]["seen"], d["hops"][-1]

    # get says the name and each endpoint's number; probe expects what the kernel does.
    (svc,) = [s for s in json.loads(netlab("get", "services", "--lab", lab, "-o", "json").stdout)["items"]
              if s["name"] == "web"]
    assert [(p["target_port"], [(e["pod"], e["port"]) for e in p["endpoints"]]) for p in svc["ports"]] == [
        ("http", [("web-a", 8080), ("web-b", 9090)]), ("grpc", [])]
    proc = netlab("probe", "--lab", lab, "-o", "json", check=False)
    report = json.loads(proc.stdout)
    assert proc.returncode == 0, probe_failures(report)
    web = [p for p in report["probes"] if (p.get("service") or {}).get("name") == "web"]
    http = [p for p in web if p["service"]["port"] == 80]
    assert http and {p["expected"] for p in http} == {"reachable"}
    assert {p["answered_by"] for p in http} <= {"web-a", "web-b"}
    assert {p["expected"] for p in web if p["service"]["port"] == 81} == {"unreachable"}
