"""The UTS namespaces of the lab's machines other than pods: each one's hostname is its name, as on a real one.

A real node is a machine whose hostname is its node name (minikube's VM is
``minikube``; the kubelet registers the node under its hostname), and a host
on the internet, the lab's gateway and its load balancer are machines of
their own too. In netlab each is a network namespace of the host, and would
show the host's hostname. So each node, internet host (``gateway``, ``lb``
and the topology's ``internet.hosts``) and the ``underlay`` gets a UTS
namespace of its own, made and pinned like a pod's (uts.py:
``<state dir>/<lab>/uts/<name>``; nodes, pods and internet hosts never share
a name, and none is called ``underlay``, ``gateway`` or ``lb``,
model/checks.py), and ``netlab exec NAME`` joins it with the network
namespace: ``hostname`` there prints the name the topology gives it.

Nothing else changes in them. A UTS namespace holds the hostname and the
NIS domain name only; the network namespace, its routes and its rules are
untouched, and what netlab runs there (iptables-restore, conntrack, CNI
plugins, probe's agent) joins the network namespace only. ``ip netns exec``
does not change the UTS namespace: it still shows the host's hostname, in
pods as in nodes. The host's own UTS namespace is never changed (uts.py
works in a short-lived thread). ``down`` lets go of these pins with the
pods' (pod_teardown.stop: every pin of a namespace that goes).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from netlab.feature import StartResult
from netlab.kernel import netns as nsmod
from netlab.workload.uts import ensure_uts, uts_hostnames, uts_path

if TYPE_CHECKING:
    from netlab.model.lab import Lab


def machines(lab: Lab) -> list[tuple[str, str, str]]:
    """(name, network namespace, how it is called) of each namespace but a pod's that ``netlab exec`` runs in:
    the nodes, the internet's hosts (its gateway and balancer too), the underlay."""
    return ([(n.name, n.netns, f"node {n.name}") for n in lab.nodes]
            + [(name, netns, f"host {name}") for name, netns in lab.internet_hosts]
            + [("underlay", lab.underlay_netns, "the underlay")])


def kind_of(lab: Lab, name: str) -> str | None:
    """How the machine ``name`` is called ("node minikube", "host example", "the underlay"); None for a pod."""
    return next((words for m, _, words in machines(lab) if m == name), None)


def start(lab: Lab, again: bool) -> StartResult:
    """Each machine's UTS namespace where it is missing (``again``: said, the lab was up before)."""
    present = [(name, words) for name, netns, words in machines(lab) if nsmod.is_netns_mount(netns)]
    _, made, renamed = ensure_uts(lab.name, {name: name for name, _ in present})
    words = dict(present)
    return StartResult(actions=[f"made {words[name]}'s UTS namespace (hostname {name})" for name in made if again]
                       + [f"set {words[name]}'s hostname to {name}" for name in renamed])


def drift(lab: Lab) -> list[str]:
    """One line per machine whose UTS namespace is missing or names another host."""
    all_ = machines(lab)
    names = uts_hostnames({name: uts_path(lab.name, name) for name, _, _ in all_})
    return [f"uts: {words}: UTS namespace (hostname {name}) is missing; up makes it again"
            if names.get(name) is None else
            f"uts: {words}: hostname is {names[name]}, not {name}; up sets it again"
            for name, _, words in all_ if names.get(name) != name]
