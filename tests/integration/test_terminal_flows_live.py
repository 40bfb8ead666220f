"""A Completed pod that declares a containerPort serves nothing (root): its command exited for good, as Kubernetes
sees a Succeeded pod whose sandbox it tears down. probe expected the port to answer ("nothing listens on tcp port
8080", exit 1) and `policy table` said `job -> job allowed but BLOCKED` (exit 1) while status said all as planned
(QA qr3 #2). Now both leave its flows out with a note and exit 0; a real connection to the port is refused, which
is why no flow to it may be expected to answer."""

from __future__ import annotations

import json

import pytest

from helpers import in_netns, netlab, wait_for

pytestmark = pytest.mark.root

TOPOLOGY = """name: {lab}
nodes: [{{name: n1}}, {{name: n2}}]
pods:
  - {{name: cl, node: n1}}
  - {{name: web, node: n2, labels: {{app: web}}}}
  - {{name: job, node: n1, restartPolicy: Never,
      containers: [{{name: main, command: ["true"], ports: [{{containerPort: 8080}}]}}]}}
networkPolicies:
  - {{name: web-in, spec: {{podSelector: {{matchLabels: {{app: web}}}}, policyTypes: [Ingress], ingress: [{{}}]}}}}
"""
NOTE = ("pod job has terminated (its containers exited for good: Completed or Error): no flow to or from it is "
        "probed")
CONNECT = """
import socket, sys
try:
    socket.create_connection((sys.argv[1], 8080), timeout=3).close()
    print("connected")
except OSError as exc:
    print(type(exc).__name__)
"""


def test_probe_and_policy_table_leave_a_completed_pods_port_out(labs):
    lab = labs.name("rp")
    labs.up(TOPOLOGY.format(lab=lab))
    assert wait_for(lambda: {p["name"]: p["status"] for p in json.loads(
        netlab("get", "pods", "--lab", lab, "-o", "json").stdout)["items"]}.get("job") == "Completed", 20)
    assert netlab("status", "--lab", lab, check=False).returncode == 0
    ips = {p["name"]: p["ip"] for p in json.loads(netlab("get", "pods", "--lab", lab, "-o", "json").stdout)["items"]}
    # the kernel: nothing listens on the declared port (the pod's command exited)
    got = in_netns(f"{lab}-cl", "python3", "-c", CONNECT, ips["job"], check=True).stdout.strip()
    assert got == "ConnectionRefusedError", got

    text = netlab("probe", "--lab", lab, check=False)
    assert text.returncode == 0, text.stdout + text.stderr
    assert NOTE in text.stdout.splitlines(), text.stdout
    report = json.loads(netlab("probe", "--lab", lab, "-o", "json", check=False).stdout)
    assert report["ok"] and report["not_probed"][0] == NOTE, report["not_probed"]
    assert not [r for r in report["probes"] if "job" in (r["source"], r["destination"])]
    assert {r["destination"] for r in report["probes"]} >= {"cl", "web"}

    table = netlab("policy", "table", "--lab", lab, check=False)
    assert table.returncode == 0, table.stdout + table.stderr
    assert f"note: {NOTE}" in table.stdout.splitlines(), table.stdout
    assert "job       -   -   -" in table.stdout, table.stdout
    data = json.loads(netlab("policy", "table", "--lab", lab, "-o", "json").stdout)
    assert data["notes"] == [NOTE] and data["mismatches"] == 0 and data["probed"]
    assert not [f for f in data["flows"] if "job" in (f["source"], f["destination"])]
    assert {(f["source"], f["destination"]) for f in data["flows"]} == {
        (s, d) for s in ("cl", "web") for d in ("cl", "web")}
