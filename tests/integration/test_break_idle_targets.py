"""A break's target that no flow of the lab meets, on real labs (root): QA q8 2 and 3.

ip-forward-off and forward-policy-drop on a node with no pods exited 0, yet every probe passed: now refused in one
line, exit 2, the node's sysctl and FORWARD chain as they were. (tests/unit/test_breaks_idle_targets.py judges every
node scenario of the catalogue on such a node.) conntrack-stale-entry took a Completed pod (restartPolicy Never)
listed first as its DNS client, in break and quiz: a pod that never queries again; it takes a running one now.
"""

from __future__ import annotations

import json

import pytest

from breaking import assert_as_planned
from helpers import in_netns, netlab, state_path, wait_for, up_here
from netlab import Lab

pytestmark = pytest.mark.root


def three_nodes(lab: str) -> str:
    """n1 and n2 with a pod each, n3 with none."""
    return f"""name: {lab}
nodes:
  - {{name: n1}}
  - {{name: n2}}
  - {{name: n3}}
pods:
  - {{name: a, node: n1}}
  - {{name: b, node: n2}}
"""


def forwarding(netns: str) -> tuple[str, str]:
    """The node's ip_forward and its filter table's FORWARD chain (policy and rules), as the kernel shows them."""
    fwd = in_netns(netns, "sysctl", "-n", "net.ipv4.ip_forward", check=True).stdout.strip()
    rules = in_netns(netns, "iptables-save", "-t", "filter", check=True).stdout
    return fwd, "\n".join(line for line in rules.splitlines() if "FORWARD" in line and not line.startswith("#"))


def test_a_node_without_pods_is_refused_and_nothing_changes(labs):
    lab = labs.name("bq")
    labs.up(three_nodes(lab))
    idle, busy = f"{lab}-n3", f"{lab}-n2"
    before = forwarding(idle)
    assert before[0] == "1" and ":FORWARD ACCEPT" in before[1], before
    for name in ("ip-forward-off", "forward-policy-drop"):
        out = netlab("break", name, "--lab", lab, "--target", "n3", check=False)
        assert out.returncode == 2 and out.stdout == "", out
        [line] = out.stderr.strip().splitlines()
        assert f"{name} breaks what a node sends, forwards or receives" in line, line
        assert line.endswith("node n3 is not one (nodes that are: n1, n2)"), line
        assert forwarding(idle) == before
    assert_as_planned(lab, "two refused breaks")
    # On a node with a pod it breaks, and the pod's flows across it fail.
    assert "broke ip-forward-off on node n2" in netlab("break", "ip-forward-off", "--lab", lab, "--target", "n2").stdout
    assert forwarding(busy)[0] == "0" and netlab("probe", "--lab", lab, check=False).returncode == 1
    Lab.attach(lab).repair()  # `netlab up --lab`'s converge, in this process
    assert forwarding(busy)[0] == "1"


DONE = """name: {lab}
nodes: [{{name: n1}}, {{name: n2}}]
pods:
  - {{name: job, node: n1, restartPolicy: Never, containers: [{{name: main, command: ["true"]}}]}}
  - {{name: a, node: n1}}
  - {{name: w, node: n2, labels: {{app: web}}}}
services:
  - {{name: web, selector: {{app: web}}, ports: [{{port: 80, targetPort: 8080}}]}}
"""


def test_conntrack_stale_entry_never_picks_a_completed_pod(labs):
    from netlab.api.topology import load
    from netlab.breaks import catalogue, quiz

    lab = labs.name("bq")
    path, _ = labs.up(DONE.format(lab=lab))

    def pods() -> dict:
        """`netlab get pods -o json`'s pods (their STATUS as kubectl's), read by the library in this process."""
        return {p.name: p for p in Lab.attach(lab).pods()}

    assert wait_for(lambda: pods()["job"].status == "Completed", 20)
    ip_a = pods()["a"].ip

    got = netlab("break", "conntrack-stale-entry", "--lab", lab, "--target", "job", check=False)
    assert got.returncode == 2 and got.stdout == "" and "pod job is terminal" in got.stderr, got
    out = netlab("break", "conntrack-stale-entry", "--lab", lab).stdout
    assert "broke conntrack-stale-entry on pod a:" in out and f": udp {ip_a}:40053 → " in out, out
    up_here(path)

    served = load(path).lab.with_terminal(frozenset({"job"}))  # as break and quiz read the running lab
    seed = next(n for n in range(500) if quiz.pick(served, n).name == "conntrack-stale-entry")
    netlab("quiz", "--seed", str(seed), "--lab", lab)
    with open(state_path(lab, quiz.QUIZ_FILE)) as f:
        picked = json.load(f)
    assert (picked["scenario"], picked["target"]) == ("conntrack-stale-entry", "a"), picked
    assert catalogue.default_target(catalogue.scenario("conntrack-stale-entry"), served) == "a"
