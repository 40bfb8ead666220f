"""Impairments' loss as iptables rules: one ``mangle`` chain per impaired namespace.

``loss: 1%`` on a pod's ``eth0`` becomes, in that pod's namespace::

    -A POSTROUTING -j NETLAB-IMPAIR
    -A NETLAB-IMPAIR -o eth0 -m statistic --mode random --probability 0.0100000000 -j DROP

POSTROUTING of ``mangle`` is the last hook every packet leaving through an
interface passes, sent from the namespace or forwarded by it (a node's
``cni0`` and ``flannel.1``), so the rule drops each one with that chance, as
``netem loss`` would at the qdisc, one step later. xt_statistic draws a fresh
random number per packet (``prandom_u32``): the losses are independent.

This is a plan resource like the Service rules: ``status`` compares it with
the kernel and ``up`` repairs it. Rate and delay are qdiscs, which the
impairment feature (netlab.impair) keeps.
"""

from __future__ import annotations

from netlab.model.impair import loss_fraction
from netlab.model.lab import Lab
from netlab.plan.iptables import Ruleset
from netlab.plan.resources import NatRules

CHAIN = "NETLAB-IMPAIR"
TABLE = "mangle"


def impaired(lab: Lab) -> list[tuple[str, str, dict[str, str | None]]]:
    """(namespace, interface, spec) of every impairment in the topology, nodes first."""
    out = []
    nodes = {n.name: n for n in lab.nodes}
    for spec in lab.topo.nodes:
        out += [(nodes[spec.name].netns, iface, imp.spec()) for iface, imp in sorted(spec.impair.items())]
    for pod in lab.pods:
        out += [(pod.netns, iface, imp.spec()) for iface, imp in sorted(pod.spec.impair.items())]
    return out


def loss_rules(netns: str, losses: dict[str, str]) -> NatRules | None:
    """The mangle rules dropping ``losses`` ({interface: "1%"}) of what leaves each interface."""
    rs = Ruleset(TABLE)
    rs.chain(CHAIN)
    for iface, loss in sorted(losses.items()):
        chance = loss_fraction(loss)
        if chance <= 0:
            continue
        stat = "" if chance >= 1 else f" -m statistic --mode random --probability {chance:0.10f}"
        rs.add(CHAIN, f"-o {iface}{stat} -j DROP")
    if not rs.rules():
        return None
    rs.jump("POSTROUTING", f"-j {CHAIN}")
    return rs.resource(netns, f"netlab impairments of {netns}: random loss")


def resources(lab: Lab) -> list[NatRules]:
    by_ns: dict[str, dict[str, str]] = {}
    for netns, iface, spec in impaired(lab):
        if spec.get("loss"):
            by_ns.setdefault(netns, {})[iface] = spec["loss"]  # type: ignore[assignment]
    out = [loss_rules(ns, losses) for ns, losses in by_ns.items()]
    return [r for r in out if r is not None]
