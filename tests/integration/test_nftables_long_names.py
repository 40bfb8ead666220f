"""kube-proxy's nftables mode with the longest names Kubernetes allows, on a real lab (root).

A namespace and Service names of 63 characters and a port name of 15 make the element comment
``<ns>/<svc>:<port>`` 143 characters long; nft refuses a comment over 128 ("comment too long, 128 characters
maximum allowed") and with it the node's whole table, so `up` failed. kube-proxy cuts the comment to 128 bytes
(knftables.CommentLengthMax, kubernetes#139515); netlab now does the same. One small lab (two nodes, a web pod on
n1, a client on n2, the cluster DNS): a NodePort Service with externalTrafficPolicy Local (n2 has no endpoint of
it: its nodePort gets a `: drop` element in no-endpoint-nodeports) and one without endpoints (a `goto reject-chain`
element in no-endpoint-services on both nodes). Checked with `nft -j`, real traffic and `trace`; always taken down.
The plan's side, without root: tests/unit/test_nftables_long_names_plan.py.
"""

from __future__ import annotations

import json
import sys

import pytest

from helpers import in_netns, netlab
from netlab.model.lab import resolve
from netlab.model.load import load_topology
from netlab.plan.build import build_plan
from netlab.realize import nftables as listing

pytestmark = pytest.mark.root

NS = "n" + "s" * 61 + "1"  # 63 characters: the most a namespace (a DNS label) may have
SVC = "s" + "v" * 61 + "c"  # 63: the most a Service name (a DNS-1035 label) may have
EMPTY = SVC[:-1] + "e"
PORT = "abcdefghijklmno"  # 15: the most a port name (IANA_SVC_NAME) may have
TOPOLOGY = f"""name: {{lab}}
cluster: {{{{kubeProxyMode: nftables}}}}
nodes: [{{{{name: n1}}}}, {{{{name: n2}}}}]
namespaces: [{{{{name: {NS}}}}}]
pods:
  - {{{{name: web, node: n1, namespace: {NS}, labels: {{{{app: web}}}}}}}}
  - {{{{name: client, node: n2, namespace: {NS}}}}}
services:
  - name: {SVC}
    namespace: {NS}
    selector: {{{{app: web}}}}
    type: NodePort
    externalTrafficPolicy: Local
    clusterIP: 10.96.0.40
    ports: [{{{{name: {PORT}, port: 80, targetPort: 8080, nodePort: 30090}}}}]
  - name: {EMPTY}
    namespace: {NS}
    selector: {{{{app: nothing}}}}
    clusterIP: 10.96.0.41
    ports: [{{{{name: {PORT}, port: 80}}}}]
"""
CONNECT = r"""
import json, socket, sys
try:
    s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=3)
except OSError as exc:
    print(json.dumps({"error": exc.__class__.__name__}))
    sys.exit()
s.sendall(b"hi\n")
print(s.recv(4096).decode().strip())
"""


def connect(netns: str, host: str, port: int) -> dict:
    proc = in_netns(netns, sys.executable, "-c", CONNECT, host, str(port), timeout=30)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def element_comments(netns: str) -> dict[str, list[tuple[object, str | None]]]:
    """Each no-endpoint map's elements in ``nft -j list ruleset``: (key, comment)."""
    ruleset = json.loads(in_netns(netns, "nft", "-j", "list", "ruleset", check=True).stdout)["nftables"]
    return {o["map"]["name"]: [(e[0]["elem"]["val"], e[0]["elem"].get("comment")) for e in o["map"].get("elem", [])]
            for o in ruleset if o.get("map", {}).get("table") == "kube-proxy"
            and o["map"]["name"].startswith("no-endpoint-")}


def test_a_service_with_the_longest_names_goes_up_as_kube_proxy_writes_it(labs):
    lab = labs.name("nc")
    path, _ = labs.up(TOPOLOGY.format(lab=lab))  # exit 0: nft took every node's table
    status = netlab("status", "--lab", lab, check=False)
    assert status.returncode == 0 and "all as planned" in status.stdout, status.stdout + status.stderr

    # The kernel holds the comments cut to 128 bytes, as planned: status compares them like with like.
    name, empty = f"{NS}/{SVC}:{PORT}", f"{NS}/{EMPTY}:{PORT}"
    plan = build_plan(resolve(load_topology(path)))
    for node in ("n1", "n2"):
        ns = f"{lab}-{node}"
        kernel = json.loads(in_netns(ns, "nft", "-j", "list", "table", "ip", "kube-proxy", check=True).stdout)
        assert listing.listing(kernel) == next(r for r in plan.of_kind("nft") if r.netns == ns).listing
        assert element_comments(ns)["no-endpoint-services"] == [({"concat": ["10.96.0.41", "tcp", 80]},
                                                                 empty[:128])]
    # n2 has no endpoint of the Local Service: outside traffic to its nodePort is dropped, said by the cut name
    assert element_comments(f"{lab}-n2")["no-endpoint-nodeports"] == [({"concat": ["tcp", 30090]}, name[:128])]
    assert element_comments(f"{lab}-n1")["no-endpoint-nodeports"] == []

    # Real traffic: the client on n2 reaches the endpoint on n1 through the ClusterIP; the empty one refuses.
    client = f"{lab}-client"
    assert connect(client, "10.96.0.40", 80).get("pod") == "web"
    assert connect(client, "10.96.0.41", 80) == {"error": "ConnectionRefusedError"}

    # trace follows the flow through the long chains, to the endpoint.
    proc = netlab("trace", "--lab", lab, "client", f"svc/{NS}/{SVC}", "--proto", "tcp", "-o", "json", check=False,
                  timeout=60)
    d = json.loads(proc.stdout)
    assert proc.returncode == 0 and d["delivered"] and d["reply_received"], proc.stderr
    web = json.loads(netlab("get", "pods", "--lab", lab, "web", "-o", "json").stdout)["items"][0]["ip"]
    assert d["endpoint"]["sep_chain"].startswith("endpoint-") and d["endpoint"]["sep_chain"].endswith(
        f"-{NS}/{SVC}/tcp/{PORT}__{web}/8080")
