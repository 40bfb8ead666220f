"""trace on a real lab (root): a terminal pod's end is said as probe says it, and a node's ping to a ClusterIP has
the source row its TCP gets.

* `trace` to (or from) a pod whose containers exited for good (Completed) ran as for a running pod: the kernel of
  the namespace netlab keeps answered the ping, and nothing said that nothing of the pod runs there, while probe
  leaves its flows out with a note. Its text and JSON (`notes`), and Lab.trace, now say it in probe's words.
* A node's ICMP echo to a ClusterIP (which kube-proxy does not DNAT) had no row for the route lookup that picked
  its source, while the node's TCP to the same Service has one (source_route). It has now, with the source the
  kernel picks: `ip -j route get CLUSTER_IP` in the node's namespace, and what the capture saw leaving.
"""

from __future__ import annotations

import json

import pytest

from helpers import in_netns, netlab, traced, wait_for
from netlab import Lab

pytestmark = pytest.mark.root

TOPOLOGY = """name: {lab}
nodes: [{{name: n1}}, {{name: n2}}]
pods:
  - {{name: cl, node: n1}}
  - {{name: web, node: n2, labels: {{app: web}}}}
  - {{name: done1, node: n1, restartPolicy: Never,
      containers: [{{name: main, command: ["true"], ports: [{{containerPort: 8080}}]}}]}}
services:
  - {{name: web, selector: {{app: web}}, ports: [{{port: 80, targetPort: 8080}}]}}
"""
NOTE = ("pod done1 has terminated (its containers exited for good: Completed or Error): nothing runs in it to answer "
        "or send, so nothing listens there (Kubernetes releases a terminated pod's sandbox; netlab keeps its "
        "namespace, whose kernel this packet met)")


def pods(lab: str) -> dict[str, dict]:
    return {p["name"]: p for p in json.loads(netlab("get", "pods", "--lab", lab, "-o", "json").stdout)["items"]}


def test_a_terminal_pod_is_said_as_probe_says_it(labs):
    lab = labs.name("tr")
    path, _ = labs.up(TOPOLOGY.format(lab=lab))
    assert wait_for(lambda: pods(lab)["done1"]["status"] == "Completed", 20)
    netlab("up", "-t", path)

    # the kernel: nothing listens in done1's namespace
    assert in_netns(f"{lab}-done1", "ss", "-ltunH", check=True).stdout.strip() == ""
    probe = json.loads(netlab("probe", "--lab", lab, "-o", "json", timeout=120).stdout)
    assert any(n.startswith("pod done1 has terminated (its containers exited for good: Completed or Error): ")
               for n in probe["not_probed"]), probe["not_probed"]
    code, doc = traced(lab, "cl", "done1")
    assert code == 0 and doc["delivered"] and doc["notes"] == [NOTE], doc["notes"]
    text = netlab("trace", "--lab", lab, "cl", "done1", "--port", "8080", check=False)
    assert text.returncode == 1 and f"note: {NOTE}" in text.stdout.splitlines(), text.stdout
    assert Lab(lab).trace("done1", "cl").notes == (NOTE,)
    code, doc = traced(lab, "cl", "web")
    assert doc["notes"] == [], doc["notes"]


def test_a_nodes_ping_to_a_cluster_ip_names_the_source_the_kernel_picks(labs):
    """The row of the lookup that picked the echo's source, as the node's TCP to the Service has it."""
    lab = labs.name("tr")
    labs.up(TOPOLOGY.format(lab=lab))
    cip = json.loads(netlab("get", "svc", "--lab", lab, "-o", "json").stdout)
    cip = next(s["cluster_ip"] for s in cip["items"] if s["name"] == "web")
    [kernel] = json.loads(in_netns(f"{lab}-n1", "ip", "-j", "route", "get", cip, check=True).stdout)
    _, ping = traced(lab, "n1", "svc/web", "--proto", "icmp")
    first = ping["hops"][0]
    assert first["facts"]["source_route"] is True and first["kind"] == "route", first
    assert first["facts"]["source"] == kernel["prefsrc"] == ping["source"]["ip"], (first, kernel)
    assert first["device"] == kernel["dev"] and first["commands"] == [f"ip -n {lab}-n1 route get {cip}"], first
    assert f"via {kernel['gateway']} dev {kernel['dev']} src {kernel['prefsrc']}: the source address" \
        in first["decision"], first["decision"]
    # the capture saw the echo leave eth0 from that source, on the route row after it
    out = ping["hops"][1]
    assert out["kind"] == "route" and out["seen"] is True, out
    assert out["observe"]["flow"].startswith(f"{kernel['prefsrc']} → {cip} icmp"), out
    _, tcp = traced(lab, "n1", "svc/web")
    assert tcp["hops"][0]["facts"].keys() == first["facts"].keys(), (tcp["hops"][0], first)
