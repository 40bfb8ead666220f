"""Netlab's own impairments on the path of the flows a probe run found failing, said as hints.

``netlab impair`` (or a topology's ``impair:``) makes an interface drop, slow or delay what it sends. Flows
that cross it may fail for that alone, though the lab is as planned (``status`` says so): probe's failures
then say why, as trace's note does (QA q39 3: 28 flows "no reply in 1 s" under a loss of 100%, no word of
it). A rate limit (tbf) queues what exceeds its rate for at most 50 ms and drops the rest: a flow alone gets
through, but a Service's spread check opens its connections all at once, and their packets overflow that
queue; its hint says so in its failure's words.

Which flows an interface is on the path of, from the ends of each flow alone (pure, no kernel): a pod's eth0
sends all its pod's packets; a node's bridge (cni0) sends what reaches its pods; a node's other interfaces
(eth0, the VXLAN device) send what goes between nodes, or to or from the node itself.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from netlab.model.impair import LATENCY_US, describe, loss_fraction

if TYPE_CHECKING:
    from netlab.model.lab import Lab
    from netlab.probe.distribution import DistResult
    from netlab.probe.judge import Result
    from netlab.probe.matrix import Endpoint, Probe

SHOWN = 3  # failed flows named in a hint; the rest are counted


class Ends:
    """The pods and nodes at the ends of one flow (a Service's: each endpoint it may pick), and whether it leaves
    a node for another, or for the node itself or the internet (a node's own interfaces then send it)."""

    def __init__(self, lab: "Lab", probe: "Probe"):
        node_of = {p.name: p.node for p in lab.pods}
        self.pods: set[str] = set()
        self.nodes: set[str] = set()
        self.leaves = False
        for end in (probe.source, probe.destination):
            self._add(end, node_of)
        if probe.svc is not None:
            for pod, _, _ in probe.svc.endpoints:
                self.pods.add(pod)
                if node_of.get(pod):
                    self.nodes.add(str(node_of[pod]))
            if probe.svc.node:
                self.nodes.add(probe.svc.node)
        self.leaves = self.leaves or len(self.nodes) > 1

    def _add(self, end: "Endpoint", node_of: dict[str, str]) -> None:
        if end.kind == "pod":
            self.pods.add(end.name)
            if node_of.get(end.name):
                self.nodes.add(str(node_of[end.name]))
        elif end.kind == "node":
            self.nodes.add(end.name)
            self.leaves = True
        elif end.kind == "host":
            self.leaves = True

    def crosses(self, node: bool, name: str, iface: str) -> bool:
        """Whether the flow leaves by interface ``iface`` of pod or node ``name`` (``node``: a node's)."""
        if not node:
            return name in self.pods
        if name not in self.nodes:
            return False
        return iface == "cni0" or self.leaves


def what_it_does(spec: dict[str, str | None]) -> str:
    """What an impairment does to what its interface sends, in words."""
    parts = []
    if spec.get("loss"):
        loss = str(spec["loss"])
        parts.append("it drops every frame it sends" if loss_fraction(loss) >= 1
                     else f"it drops {loss} of the frames it sends, at random")
    if spec.get("rate"):
        parts.append(f"it sends at most {spec['rate']}, queues the excess for at most {LATENCY_US // 1000} ms and "
                     "drops the rest")
    if spec.get("delay"):
        parts.append(f"it delays what it sends by {spec['delay']}"
                     + (f" ± {spec['jitter']}" if spec.get("jitter") else ""))
    return "; ".join(parts)


def hints(lab: "Lab", results: list["Result"], dists: list["DistResult"], timeout: float) -> list[str]:
    """A hint for each interface netlab impairs that a failed flow (reachable expected, not as expected)
    crosses, naming the flows; one more for a Service spread check whose connections failed across a rate
    limit (its burst overflows the limiter's queue)."""
    if not any(n.impair for n in lab.topo.nodes) and not any(p.spec.impair for p in lab.pods):
        return []  # the common case: the plan's modules are not loaded for it (a probe loads what it needs)
    from netlab.plan import impair as plan_impair

    named = plan_impair.named(lab)
    node_ns = {n.netns for n in lab.nodes}
    failed = [(r.probe.label, Ends(lab, r.probe)) for r in results if r.problems and r.probe.expected]
    spread = [(d, Ends(lab, d.dist.probe)) for d in dists if not d.ok]
    out: list[str] = []
    for name, netns, iface, spec in named:
        node, target = netns in node_ns, f"{name}:{iface}"
        labels = [label for label, ends in failed if ends.crosses(node, name, iface)]
        labels += [f"{d.dist.title} ({d.dist.target.address})" for d, ends in spread if ends.crosses(node, name, iface)]
        if not labels:
            continue
        more = f" and {len(labels) - SHOWN} more" if len(labels) > SHOWN else ""
        flows = "a flow that failed" if len(labels) == 1 else f"{len(labels)} flows that failed"
        out.append(f"{target} has netlab's impairment {describe(spec)} ({what_it_does(spec)}), "
                   f"on the path of {flows}: {'; '.join(labels[:SHOWN])}{more}; `netlab impair --lab {lab.name}` "
                   f"lists it, `sudo netlab impair --lab {lab.name} {target} --clear` removes it")
        if spec.get("rate"):
            out += [burst(d, target, str(spec["rate"]), timeout) for d, ends in spread
                    if ends.crosses(node, name, iface) and (d.failed or d.late)]
    return out


def burst(d: "DistResult", target: str, rate: str, timeout: float) -> str:
    """Why a Service spread check failed across a rate limit, in its failure's words."""
    from netlab.probe.distribution import failed_words, late_words

    total = d.dist.connections
    said = ([failed_words(d.failed, total)] if d.failed else []) + ([late_words(d.late, total, timeout)]
                                                                     if d.late else [])
    return (f"{d.dist.title}: {'; '.join(said)}, across {target}, limited to {rate}: this check opens its {total} "
            f"connections at once, and their packets overflow the limiter's queue ({LATENCY_US // 1000} ms of "
            f"{rate}), which drops them or holds them past the timeout; a flow alone gets through (`netlab trace` "
            "shows one)")
