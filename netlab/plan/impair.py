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
impairment feature (netlab.impair) keeps, after the network exists:
:func:`qdisc_steps` says, as ``tc`` commands, what it sets (``netlab plan``
prints them after the objects, as ``up`` sets them after the rest)::

    tc -n <lab>-p1 qdisc replace dev eth0 root handle 1: tbf rate 10mbit burst 12500 latency 50ms
    tc -n <lab>-p2 qdisc replace dev eth0 root handle 1: netem delay 20ms 5ms limit 1000
    tc -n <lab>-p2 qdisc replace dev eth0 parent 1:1 handle 10: tbf rate 10mbit burst 12500 latency 50ms
    tc -n <lab>-p3 qdisc replace dev eth0 root handle 1: netem delay 0ms 10ms limit 1000   (delay: 0ms, jitter: 10ms)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, ClassVar

from netlab.model.impair import LATENCY_US, NETEM_LIMIT, burst_bytes, loss_fraction, rate_bits, time_us
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


@dataclass(frozen=True)
class QdiscStep:
    """One qdisc an impairment sets (netlab.impair.lifecycle, through kernel/tc.py's codec), as tc would."""

    kind: ClassVar[str] = "qdisc"
    netns: str
    dev: str
    parent: str  # "root", or "1:1" (a tbf under netem's class)
    handle: str
    qdisc: str  # tbf, netem
    options: str

    def command(self) -> str:
        return f"tc -n {self.netns} qdisc replace dev {self.dev} {self.parent} handle {self.handle} " \
            f"{self.qdisc} {self.options}"

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, **asdict(self), "command": self.command()}


def _tbf(spec: dict[str, str | None]) -> str:
    rate = spec["rate"] or ""
    return f"rate {rate.lower()} burst {burst_bytes(rate_bits(rate))} latency {LATENCY_US // 1000}ms"


def netem_wanted(spec: dict[str, str | None]) -> bool:
    """A netem is set when any of its parameters does something: a delay, or a jitter round a delay of 0
    (``delay: 0ms, jitter: 10ms`` is tc's ``netem delay 0ms 10ms``). netlab's loss is an iptables rule."""
    return any(spec.get(k) and time_us(spec[k] or "") for k in ("delay", "jitter"))


def qdisc_steps(lab: Lab) -> list[QdiscStep]:
    """The qdiscs ``up`` sets for the topology's rates and delays (kernel/tc.py's layout): a rate alone is a root
    tbf; a delay (or a jitter) a root netem, and with a rate a tbf under netem's class. A loss alone sets none."""
    out = []
    for netns, iface, spec in impaired(lab):
        if netem_wanted(spec):  # as impair.lifecycle.shaping and kernel/tc.py
            delay = " ".join(str(spec[k] or "0ms").lower() for k in ("delay", "jitter") if k == "delay" or spec.get(k))
            out.append(QdiscStep(netns, iface, "root", "1:", "netem", f"delay {delay} limit {NETEM_LIMIT}"))
            if spec.get("rate"):
                out.append(QdiscStep(netns, iface, "parent 1:1", "10:", "tbf", _tbf(spec)))
        elif spec.get("rate"):
            out.append(QdiscStep(netns, iface, "root", "1:", "tbf", _tbf(spec)))
    return out
