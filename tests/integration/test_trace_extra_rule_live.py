"""trace and an iptables rule the lab does not plan, added by hand on the packet's way (QA): `status` named it
("extra rule: ..."), trace did not. A DROP in a node's FORWARD left the packet "LOST ... look at the firewall"; an
ACCEPT (or any rule: a LOG, a MARK) went unsaid. Now the row where the packet ran that node's FORWARD names the rule
and its counter's rise, and a DROP that took the packet is the loss's reason, with its -D as the fix; `up` takes
both out (iptables-save shows the table as planned again)."""

from __future__ import annotations

import subprocess

import pytest

from helpers import as_planned_here, in_netns, traced, two_node_topology, up_here

pytestmark = pytest.mark.root


def _add(netns: str, rule: str) -> None:
    """The rule inserted at the head of its chain, as a user's `iptables -I` does (iptables-restore --noflush)."""
    subprocess.run(["ip", "netns", "exec", netns, "iptables-restore", "--noflush"], check=True, text=True,
                   input=f"*filter\n{rule}\nCOMMIT\n")


def _filter(netns: str) -> list[str]:
    """The namespace's filter table as iptables-save prints it, without its dated comment lines."""
    text = in_netns(netns, "iptables-save", "-t", "filter", check=True).stdout
    return [line for line in text.splitlines() if not line.startswith("#")]


def test_a_rule_added_by_hand_on_the_packets_way_is_named_at_its_row(labs):
    name = labs.name("xr")
    path = labs.up_here(two_node_topology(name, pods_per_node=1), f"{name}.yaml")
    node = f"{name}-minikube"
    before = _filter(node)
    accept = "-A FORWARD -s 10.244.0.2/32 -j ACCEPT"
    _add(node, accept.replace("-A FORWARD", "-I FORWARD 1"))
    rc, trace = traced(name, "fedora-1", "fedora-2")
    assert rc == 0 and trace["delivered"], trace
    row = next(h for h in trace["hops"] if h["netns"] == node and h["kind"] == "route")  # forwarded by minikube
    assert row["problem"] is not None and f"the packet ran FORWARD in {node}, whose chains hold a rule the lab does " \
        f"not plan: `{accept}` (counted " in row["problem"], row
    assert "`netlab status` calls it extra" in row["problem"], row["problem"]
    assert row["fix"] == f"ip netns exec {node} iptables -D FORWARD -s 10.244.0.2/32 -j ACCEPT", row
    assert sum(1 for h in trace["hops"] + trace["reply_hops"] if h["problem"]) == 1, trace["hops"]

    drop = "-A FORWARD -s 10.244.0.2/32 -d 10.244.1.3/32 -j DROP"
    _add(node, drop.replace("-A FORWARD", "-I FORWARD 1"))
    rc, trace = traced(name, "fedora-1", "fedora-2")
    assert rc == 1 and not trace["delivered"] and trace["lost"]["netns"] == node, trace["lost"]
    assert "a rule netlab did not write in node minikube's filter chain FORWARD dropped the packet as it forwarded " \
        "it" in trace["lost"]["reason"] and f"`{drop}`" in trace["lost"]["reason"], trace["lost"]
    assert trace["lost"]["fix"] == f"ip netns exec {node} iptables -D {drop[3:]}", trace["lost"]
    assert not as_planned_here(name)
    up_here(path)
    assert _filter(node) == before
    rc, trace = traced(name, "fedora-1", "fedora-2")
    assert rc == 0 and not any(h["problem"] for h in trace["hops"] + trace["reply_hops"]), trace
