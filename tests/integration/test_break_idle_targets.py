"""A break's target that no flow of the lab meets, on real labs (root): QA q8 2 and 3.

ip-forward-off and forward-policy-drop on a node with no pods exited 0, yet every probe passed: now refused in one
line, exit 2, the node's sysctl and FORWARD chain as they were. (tests/unit/test_breaks_idle_targets.py judges every
node scenario of the catalogue on such a node.)
"""

from __future__ import annotations

import pytest

from helpers import in_netns, netlab

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
    assert netlab("status", "--lab", lab, check=False).returncode == 0
    # On a node with a pod it breaks, and the pod's flows across it fail.
    assert "broke ip-forward-off on node n2" in netlab("break", "ip-forward-off", "--lab", lab, "--target", "n2").stdout
    assert forwarding(busy)[0] == "0" and netlab("probe", "--lab", lab, check=False).returncode == 1
    netlab("up", "--lab", lab)
    assert forwarding(busy)[0] == "1"
