"""What Kubernetes accepts that netlab refused, on a real lab (root): a headless Service without ports, whose
name the lab's cluster DNS answers with its endpoints' pod IPs (no SRV: no port to name), resolved by a pod
through its resolv.conf; and a NetworkPolicy whose name is a 253-character DNS subdomain, whose chains are
hashed and whose rule comments are cut to the 255 bytes iptables holds, loaded by iptables-restore and enforced
on real traffic (`status` finds the rules as planned); and `policy table` of a running lab without pods."""

from __future__ import annotations

import json

import pytest

from dns_query import ask
from helpers import in_netns, netlab, probe_failures

pytestmark = pytest.mark.root

DNS = "10.96.0.10"
FQDN = "db.default.svc.cluster.local"
POLICY = ".".join(["allow"] + ["a" * 63] * 3 + ["b" * 55])  # 253 characters, dots and all
TOPOLOGY = f"""name: {{lab}}
nodes: [{{{{name: n1}}}}, {{{{name: n2}}}}]
pods:
  - {{{{name: db-0, node: n1, labels: {{{{app: db}}}}}}}}
  - {{{{name: db-1, node: n2, labels: {{{{app: db}}}}}}}}
  - {{{{name: client, node: n1, labels: {{{{role: client}}}}}}}}
  - {{{{name: other, node: n2}}}}
services:
  - {{{{name: db, selector: {{{{app: db}}}}, clusterIP: None}}}}
networkPolicies:
  - name: {POLICY}
    spec:
      podSelector: {{{{matchLabels: {{{{app: db}}}}}}}}
      ingress: [{{{{from: [{{{{podSelector: {{{{matchLabels: {{{{role: client}}}}}}}}}}}}]}}}}]
"""

CONNECT = """
import socket, sys
for target in sys.argv[1:]:
    host, port = target.rsplit(":", 1)
    try:
        socket.create_connection((host, int(port)), timeout=3).close()
        print("reached")
    except OSError as exc:
        print(type(exc).__name__)
"""


def test_a_portless_headless_service_and_a_long_dotted_policy_name_on_a_real_lab(labs):
    assert len(POLICY) == 253
    lab = labs.name("qf")
    labs.up(TOPOLOGY.format(lab=lab))
    ips = {p["name"]: p["ip"] for p in json.loads(netlab("get", "pods", "--lab", lab, "-o", "json").stdout)["items"]}
    client = f"{lab}-client"

    # The cluster DNS: one A record per endpoint of the portless headless Service, no SRV record.
    a, srv = ask(client, DNS, FQDN, f"{FQDN} SRV")
    assert a["status"] == "NOERROR" and sorted(a["answer"]) == sorted(
        f"{FQDN}. 30 IN A {ips[p]}" for p in ("db-0", "db-1")), a
    assert not srv["answer"], srv
    got = in_netns(client, "getent", "ahostsv4", "db", check=True).stdout  # through resolv.conf's search path
    assert {line.split()[0] for line in got.splitlines()} == {ips["db-0"], ips["db-1"]}, got

    # The policy's chains are hashed, its comments cut to 255 bytes, and iptables-restore took them.
    rules = in_netns(f"{lab}-n1", "iptables-save", "-t", "filter", check=True).stdout
    chains = [line[1:].split()[0] for line in rules.splitlines() if line.startswith(":NETPOL-ING-")]
    assert chains and all(len(c) <= 28 for c in chains), chains
    cut = [line for line in rules.splitlines() if f"default/{POLICY[:100]}" in line]
    assert cut, rules
    comments = [line.split('--comment "', 1)[1].split('"', 1)[0] for line in cut if '--comment "' in line]
    assert comments and all(len(c) <= 255 and c.startswith("default/") for c in comments), comments
    # ... and the kernel enforces it: the client reaches both endpoints, the other pod is refused.
    targets = [f"{ips['db-0']}:8080", f"{ips['db-1']}:8080"]
    assert in_netns(client, "python3", "-c", CONNECT, *targets, check=True).stdout.split() == ["reached"] * 2
    refused = in_netns(f"{lab}-other", "python3", "-c", CONNECT, *targets, check=True).stdout.split()
    assert refused == ["ConnectionRefusedError"] * 2, refused
    status = netlab("status", "--lab", lab, check=False)
    assert status.returncode == 0, status.stdout + status.stderr
    # get shows the Service as kubectl does (no port, its endpoints' addresses), and probe agrees with the policy.
    table = netlab("get", "services", "--lab", lab).stdout
    assert [line.split()[:6] for line in table.splitlines() if line.startswith("db ")] == [
        ["db", "ClusterIP", "None", "<none>", "<none>", ",".join(sorted((ips["db-0"], ips["db-1"])))]], table
    proc = netlab("probe", "--lab", lab, "-o", "json", check=False)
    assert proc.returncode == 0, probe_failures(json.loads(proc.stdout))


def test_policy_table_of_a_running_lab_without_pods_says_so_in_one_line(labs):
    lab = labs.name("qf")
    labs.up(f"name: {lab}\nnodes: [{{name: n1}}]\n")
    for output in ("text", "json"):
        proc = netlab("policy", "table", "--lab", lab, "-o", output, check=False)
        said = f"nothing to tabulate in lab {lab}: lab {lab} has no pods (the table's rows and columns are pods)"
        assert proc.returncode == 2, proc  # -o json: that line in the error document (docs/json.md)
        assert proc.stdout == "" if output == "text" else json.loads(proc.stdout)["error"] == said, proc
        assert proc.stderr.splitlines() == [f"netlab: {said}"]
