"""A pod whose containers exited for good (restartPolicy Never: Completed, Error) is no Service endpoint on a real
lab (root), in both kube-proxy modes, as the EndpointSlice controller leaves a Succeeded or Failed pod out: the `up`
that started them DNATs to them (they had not exited yet), `status` says each is still an endpoint, the next `up`
takes them out of kube-proxy's rules (iptables-save, nft -j) and the cluster DNS (A, SRV from a pod), `get svc`
agrees, and every connection to the ClusterIP is answered."""

from __future__ import annotations

import json

import pytest

from dns_query import ask
from helpers import in_netns, wait_for
from netlab import Lab
from netlab.api.jsonio import to_json

pytestmark = pytest.mark.root

DNS = "10.96.0.10"
FQDN = "a.default.svc.cluster.local"
TOPOLOGY = """name: {lab}
cluster: {{kubeProxyMode: {mode}}}
nodes: [{{name: n1}}]
pods:
  - {{name: cl, node: n1}}
  - {{name: up1, node: n1, labels: {{app: a}}}}
  - {{name: done1, node: n1, labels: {{app: a}}, restartPolicy: Never, containers: [{{name: main, command: ["true"]}}]}}
  - {{name: fail1, node: n1, labels: {{app: a}}, restartPolicy: Never,
      containers: [{{name: main, command: [sh, -c, "exit 3"]}}]}}
services:
  - {{name: a, selector: {{app: a}}, clusterIP: None, ports: [{{name: http, port: 8080}}]}}
  - {{name: b, selector: {{app: a}}, ports: [{{port: 80, targetPort: 8080}}]}}
"""
# Connects to ADDR:PORT N times; prints how many were answered and by which pods.
CONNECT = """
import collections, json, socket, sys
host, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
seen = collections.Counter()
for _ in range(n):
    try:
        s = socket.create_connection((host, port), timeout=3)
        s.sendall(b"hi\\n")
        seen[json.loads(s.recv(4096))["pod"]] += 1
        s.close()
    except OSError as exc:
        seen[type(exc).__name__] += 1
print(json.dumps(seen))
"""


def pods(lab: str) -> list[dict]:
    """`get pods -o json`'s items, read in this process (kube-proxy's rules and the DNS are what is checked)."""
    return [to_json(p) for p in Lab(lab).pods()]


def kube_proxy_rules(lab: str, mode: str) -> str:
    """The node's rules: iptables-save's; in nftables mode with every rule of nft -j (the chains themselves
    aside: a chain an endpoint had stays, emptied, until the next up, as kube-proxy's staleChains)."""
    text = in_netns(f"{lab}-n1", "iptables-save", check=True).stdout
    if mode == "nftables":
        ruleset = json.loads(in_netns(f"{lab}-n1", "nft", "-j", "list", "ruleset", check=True).stdout)["nftables"]
        text += "\n".join(json.dumps(item["rule"]) for item in ruleset if "rule" in item)
    return text


@pytest.mark.parametrize("mode", ["iptables", "nftables"])
def test_completed_and_failed_pods_leave_the_services(labs, mode):
    lab = labs.name("ep")
    path = labs.up_here(TOPOLOGY.format(lab=lab, mode=mode))
    ips = {p["name"]: p["ip"] for p in pods(lab)}
    assert wait_for(lambda: {p["name"]: p["status"] for p in pods(lab) if p["name"] in ("done1", "fail1")}
                    == {"done1": "Completed", "fail1": "Error"}, 20)
    # The up that started them made them endpoints (they ran): status says they still are, up repairs it.
    assert ips["done1"] in kube_proxy_rules(lab, mode) and ips["fail1"] in kube_proxy_rules(lab, mode)
    status = Lab(lab).status()  # `status --lab`'s drift lines, read in this process
    assert not status.ok
    for pod in ("done1", "fail1"):
        assert (f"services: pod {pod} has terminated (its containers exited for good: Completed or Error) and is "
                "still a Service endpoint in kube-proxy's rules and the cluster DNS; up takes it out") in status.drift
    Lab.up(path)  # `up -t FILE`, in this process: what it leaves in the kernel is the test
    status = Lab(lab).status()  # fail1's exit is said (Never leaves it): nothing else
    assert all(line.startswith("containers: pod fail1 container main") for line in status.drift), \
        status.drift

    # kube-proxy: no rule names a terminal pod's address; up1 is the one endpoint
    rules = kube_proxy_rules(lab, mode)
    assert ips["done1"] not in rules and ips["fail1"] not in rules, rules
    assert f"--to-destination {ips['up1']}:8080" in rules or f'"addr": "{ips["up1"]}", "port": 8080' in rules

    # the cluster DNS, asked from a pod: A and SRV of the headless Service name up1 alone
    a, srv = ask(f"{lab}-cl", DNS, FQDN, f"_http._tcp.{FQDN} SRV")
    assert a["answer"] == [f"{FQDN}. 30 IN A {ips['up1']}"], a
    dashed = ips["up1"].replace(".", "-")
    assert srv["answer"] == [f"_http._tcp.{FQDN}. 30 IN SRV 0 100 8080 {dashed}.{FQDN}."], srv

    # get svc agrees; every connection to the ClusterIP is answered, by up1
    svcs = {s["name"]: s for s in (to_json(x) for x in Lab(lab).services())}  # `get services -o json`'s items
    for name in ("a", "b"):
        assert [e["pod"] for p in svcs[name]["ports"] for e in p["endpoints"]] == ["up1"], svcs[name]
    got = in_netns(f"{lab}-cl", "python3", "-c", CONNECT, svcs["b"]["cluster_ip"], "80", "12", check=True).stdout
    assert json.loads(got) == {"up1": 12}, got


WATCHED = """name: {lab}
nodes: [{{name: n1}}]
pods:
  - {{name: up1, node: n1, labels: {{app: a}}}}
  - {{name: job, node: n1, labels: {{app: a}}, restartPolicy: Never,
      containers: [{{name: main, command: [sh, -c, "while [ ! -e {go} ]; do sleep 0.05; done; exit 0"]}}]}}
services:
  - {{name: b, selector: {{app: a}}, ports: [{{port: 80, targetPort: 8080}}]}}
"""


def test_the_watcher_takes_a_pod_out_of_its_services_as_it_completes(tmp_path):
    from helpers import unique_lab, write_topology
    from watching import watching

    lab = unique_lab("ep")
    go = tmp_path / "go"  # the job completes once the test has seen it as an endpoint (no race with a timer)
    path = write_topology(tmp_path, WATCHED.format(lab=lab, go=go))
    with watching(lab) as start:
        watcher = start(path)
        ips = {p["name"]: p["ip"] for p in pods(lab)}
        assert f"--to-destination {ips['job']}:8080" in kube_proxy_rules(lab, "iptables")  # it runs: an endpoint
        at = len(watcher.lines)
        go.touch()
        watcher.wait_for_line("saw: container job/main exited (exit 0)", timeout=20, after=at)
        line = watcher.wait_for_line("did: restore iptables nat in", timeout=20, after=at)
        assert "wrote the cluster DNS records" in line, line
        rules = kube_proxy_rules(lab, "iptables")
        assert ips["job"] not in rules and f"--to-destination {ips['up1']}:8080" in rules, rules
        assert Lab(lab).status().ok  # a completed Never pod is where it should be
