"""Netlab's own impairments on the path of the flows a probe run found failing, said as hints.

``netlab impair`` (or a topology's ``impair:``) makes an interface drop, slow or delay what it sends. Flows
that cross it may fail for that alone, though the lab is as planned (``status`` says so): probe's failures
then say why, as trace's note does (QA q39 3: 28 flows "no reply in 1 s" under a loss of 100%, no word of
it). A rate limit (tbf) queues what exceeds its rate for at most 50 ms and drops the rest: a flow alone gets
through, but a Service's spread check opens its connections all at once, and their packets overflow that
queue; its hint says so in its failure's words.

Which flows an interface is on the path of, from the ends of each flow and the lab's plan (pure, no kernel): a
pod's eth0 sends all its pod's packets; a node's bridge (cni0) sends what reaches its pods; a node's other
interfaces (eth0, the VXLAN device) send what goes between nodes. A node's own packets leave by the device its
route to the other end uses, as trace's route walk finds it (:class:`Routes`): to its own pods cni0 alone (QA q48
1: `impair n1:eth0 --loss 100%` was named for a failed flow n1 -> a pod of n1), to another node's pods flannel.1
and the eth0 its VXLAN packets leave by (host-gw: eth0), to the underlay and the internet eth0.
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network, ip_address
from typing import TYPE_CHECKING

from netlab.errors import netlab_command
from netlab.model.impair import LATENCY_US, describe, loss_fraction

if TYPE_CHECKING:
    from netlab.model.lab import Lab
    from netlab.probe.distribution import DistResult
    from netlab.probe.judge import Result
    from netlab.probe.matrix import Endpoint, Probe

SHOWN = 3  # failed flows named in a hint; the rest are counted


class Routes:
    """The devices a node's own packets to an address leave it by, from the lab's plan: its pods are behind their
    bridge (the veth's end without one); any other address takes the node's longest planned route or connected
    prefix (a VXLAN device's packets leave by its underlay device too); its own addresses none (local). Each
    (node, address) is worked out once."""

    def __init__(self, lab: "Lab"):
        from netlab.plan.build import build_plan
        from netlab.plan.resources import Address, Route, Vxlan
        from netlab.probe.matrix import lab_bridge

        self.netns = {n.name: n.netns for n in lab.nodes}
        self.node_of = {p.name: p.node for p in lab.pods}  # each pod's node, for every flow's Ends
        bridge = lab_bridge(lab)
        self.own = {(p.node, p.ip): bridge or p.host_veth for p in lab.pods}
        self.local: set[tuple[str, IPv4Address]] = {(n.netns, n.ip) for n in lab.nodes}
        self.table: dict[str, list[tuple[IPv4Network, str]]] = {}
        self.under: dict[tuple[str, str], str] = {}
        for r in build_plan(lab).resources:
            if isinstance(r, Route) and r.dev and r.table == 254 and r.type == "unicast":
                self.table.setdefault(r.netns, []).append((r.dst, r.dev))
            elif isinstance(r, Address):
                self.local.add((r.netns, r.address.ip))
                self.table.setdefault(r.netns, []).append((r.address.network, r.dev))
            elif isinstance(r, Vxlan) and r.dev:
                self.under[(r.netns, r.name)] = r.dev
        self._seen: dict[tuple[str, IPv4Address], frozenset[str]] = {}

    def devices(self, node: str, address: str | IPv4Address) -> frozenset[str]:
        ip = ip_address(address)
        key = (node, ip)
        if key not in self._seen:
            self._seen[key] = self._devices(node, ip)  # type: ignore[arg-type]
        return self._seen[key]

    def _devices(self, node: str, ip: IPv4Address) -> frozenset[str]:
        if (node, ip) in self.own:
            return frozenset({self.own[(node, ip)]})
        ns = self.netns.get(node, "")
        if (ns, ip) in self.local:
            return frozenset()
        best = max(((net, dev) for net, dev in self.table.get(ns, []) if ip in net),
                   key=lambda r: r[0].prefixlen, default=None)
        if best is None:
            return frozenset()
        under = self.under.get((ns, best[1]))
        return frozenset({best[1]} | ({under} if under else set()))


class Ends:
    """The pods and nodes at the ends of one flow (a Service's: each endpoint it may pick), and whether it leaves
    a node for another, or for the internet (the nodes' own interfaces then send it). A node at an end sends by
    the devices its routes to the other end take (``routes``), not by all of its interfaces."""

    def __init__(self, lab: "Lab", probe: "Probe", routes: Routes):
        node_of = routes.node_of
        self.pods: set[str] = set()
        self.nodes: set[str] = set()
        self.leaves = False
        self.own: dict[str, set[str]] = {}  # a node at an end: the devices its own packets leave by
        for end in (probe.source, probe.destination):
            self._add(end, node_of)
        if probe.svc is not None:
            for pod, _, _ in probe.svc.endpoints:
                self.pods.add(pod)
                if node_of.get(pod):
                    self.nodes.add(str(node_of[pod]))
            if probe.svc.node:
                self.nodes.add(probe.svc.node)
        self.leaves = self.leaves or len(self.nodes | set(self.own)) > 1
        for end, other in ((probe.source, probe.destination), (probe.destination, probe.source)):
            if end.kind == "node":
                self.own[end.name] |= self._sends(routes, end.name, other, probe)

    @staticmethod
    def _sends(routes: Routes, node: str, other: "Endpoint", probe: "Probe") -> set[str]:
        """The devices ``node``'s own packets to the flow's other end leave by: a Service's, each endpoint it may
        pick (after the node's DNAT), or the node whose NodePort is dialed."""
        if other.kind != "service" or probe.svc is None:
            return set(routes.devices(node, other.ip))
        out = {d for _, ip, _ in probe.svc.endpoints for d in routes.devices(node, ip)}
        if probe.svc.node and probe.svc.node != node and probe.svc.node in routes.netns:
            out |= routes.devices(node, other.ip)
        return out

    def _add(self, end: "Endpoint", node_of: dict[str, str]) -> None:
        if end.kind == "pod":
            self.pods.add(end.name)
            if node_of.get(end.name):
                self.nodes.add(str(node_of[end.name]))
        elif end.kind == "node":
            self.own.setdefault(end.name, set())
        elif end.kind == "host":
            self.leaves = True

    def crosses(self, node: bool, name: str, iface: str) -> bool:
        """Whether the flow leaves by interface ``iface`` of pod or node ``name`` (``node``: a node's)."""
        if not node:
            return name in self.pods
        if iface in self.own.get(name, ()):
            return True
        return name in self.nodes and (iface == "cni0" or self.leaves)


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
    routes = Routes(lab)
    failed = [(r.probe.label, Ends(lab, r.probe, routes)) for r in results if r.problems and r.probe.expected]
    spread = [(d, Ends(lab, d.dist.probe, routes)) for d in dists if not d.ok]
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
                   f"lists it, `{netlab_command(f'impair --lab {lab.name} {target} --clear')}` removes it")
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
