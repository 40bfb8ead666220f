"""A node's UTS namespace: its hostname is the node's name, as on a real node.

A real node is a machine whose hostname is its node name (minikube's VM is
``minikube``; the kubelet registers the node under its hostname). A netlab
node is a network namespace of the host, and would show the host's hostname.
So each node gets a UTS namespace of its own, made and pinned like a pod's
(uts.py: ``<state dir>/<lab>/uts/<node>``; nodes, pods and internet hosts
never share a name, model/checks.py), and ``netlab exec NODE`` joins it with
the network namespace: ``hostname`` there prints the node's name.

Nothing else changes in the node. A UTS namespace holds the hostname and the
NIS domain name only; the node's network namespace, its routes and its
kube-proxy and Flannel rules are untouched, and what netlab runs there
(iptables-restore, conntrack, CNI plugins) joins the network namespace only.
``ip netns exec`` does not change the UTS namespace: it still shows the
host's hostname, in pods as in nodes. ``down`` lets go of a node's pin with
the pods' (lifecycle.stop: every pin of a namespace that goes).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from netlab.feature import StartResult
from netlab.kernel import netns as nsmod
from netlab.workload.uts import ensure_uts, uts_hostnames, uts_path

if TYPE_CHECKING:
    from netlab.model.lab import Lab


def start(lab: Lab, again: bool) -> StartResult:
    """Each node's UTS namespace where it is missing (``again``: said, the lab was up before)."""
    present = [node.name for node in lab.nodes if nsmod.is_netns_mount(node.netns)]
    _, made, renamed = ensure_uts(lab.name, {name: name for name in present})
    return StartResult(actions=[f"made node {name}'s UTS namespace (hostname {name})" for name in made if again]
                       + [f"set node {name}'s hostname to {name}" for name in renamed])


def drift(lab: Lab) -> list[str]:
    """One line per node whose UTS namespace is missing or names another host."""
    names = uts_hostnames({node.name: uts_path(lab.name, node.name) for node in lab.nodes})
    return [f"uts: node {node.name}: UTS namespace (hostname {node.name}) is missing; up makes it again"
            if names.get(node.name) is None else
            f"uts: node {node.name}: hostname is {names[node.name]}, not {node.name}; up sets it again"
            for node in lab.nodes if names.get(node.name) != node.name]
