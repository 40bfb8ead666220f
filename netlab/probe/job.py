"""The agent's job: every probe as a task, in units that say which neighbour entries their packets create.

The runner makes the job from the matrix (:func:`make_job`), the agent
(agent.py) sends it and hands back one :class:`Observation` per task.

Units keep the machine-wide neighbour table bounded (see neighbours.py and
budget.py). A unit is a group of probes started together, in *phases* run
one after the other, naming the dynamic neighbour entries its packets
create:

- a pair of pods on one bridge: both directions, the first before the
  second, so one ARP exchange serves both (A asks for B; B learns A from the
  request). With ``arp="seeded"`` the pair carries the PERMANENT entries to
  make instead (each pod's MAC for the other), which the kernel's garbage
  collector does not count;
- a node and one of its own pods;
- a batch of routed probes from one source (Service and egress probes among
  them), cut so that one batch never needs more than a quarter of the budget;
- a Service's distribution check: its first connection alone (so a ClientIP
  affinity entry exists), then the rest at once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Iterable, Protocol, Sequence, TypeVar

from netlab.probe import neighbours as nb
from netlab.probe.neighbours import End, Entry
from netlab.probe.tasks import Job, Seed, Task, Unit

if TYPE_CHECKING:  # the CLI's early job from the lab's state (plain.py) imports this module before the models load
    from netlab.model.lab import Lab
    from netlab.probe.matrix import Probe
    from netlab.probe.service_targets import Distribution

POD_IF = "eth0"
FREE_UNIT = 256  # routed probes per unit
ARP_MODES = ("auto", "real", "seeded")
# Above this many ARP deliveries (pairs of pods on one bridge x ports on that
# bridge: every ARP request is flooded to every port) "auto" seeds the pairs.
# 50 pods on a bridge: 61,250 (real ARP, about 0.3 s); 200 pods: 3,980,000
# (about 6 s of kernel time with real ARP, under 2 s seeded).
SEED_ABOVE = 1_000_000


# --- making a job from the matrix -----------------------------------------------------


def arp_flood_cost(lab: "Lab") -> int:
    return flood_cost(p.node for p in lab.pods)


def flood_cost(pod_nodes: Iterable[str]) -> int:
    """ARP deliveries of every pair of pods on one bridge resolving each other (``pod_nodes``: each pod's node)."""
    per_node: dict[str, int] = {}
    for node in pod_nodes:
        per_node[node] = per_node.get(node, 0) + 1
    return sum(k * (k - 1) // 2 * (k + 1) for k in per_node.values())


def choose_arp(lab: "Lab", arp: str = "auto") -> str:
    """real: every pair of pods on one bridge resolves the other by ARP (what a learner sees).
    seeded: each pod's ARP is still checked from its node (node -> pod probes resolve it),
    but pod pairs use the pods' own MACs as temporary PERMANENT entries: no ARP floods."""
    return arp_mode(arp, (p.node for p in lab.pods))


def arp_mode(arp: str, pod_nodes: Iterable[str]) -> str:
    """:func:`choose_arp` of a lab whose pods are on these nodes."""
    if arp not in ARP_MODES:
        raise ValueError(f"arp mode {arp!r}: want one of {', '.join(ARP_MODES)}")
    if arp == "auto":
        return "seeded" if flood_cost(pod_nodes) > SEED_ABOVE else "real"
    return arp


def probe_entries(lab: "Lab", p: "Probe") -> list[Entry]:
    if p.svc is not None or p.destination.kind == "host":
        from netlab.probe import service_paths as svcs  # loads the models: not before a Service probe needs it

        return svcs.path_entries(lab, p)
    return nb.path_entries(lab, p.source, p.destination)


def task_for(i: int, p: "Probe") -> Task:
    return Task(id=i, src=p.source.netns, dst=p.destination.addr, proto=p.proto, port=p.port or 0,
                service=p.svc is not None, wait_reply=p.echo is not False or p.question is not None, size=p.size,
                question=p.question.name if p.question is not None else "",
                behind=tuple((ip, port) for _, ip, port in p.svc.endpoints) if p.svc is not None else ())


class Path(Protocol):
    """A probe as :func:`units_of` reads it (matrix.Probe; the CLI's early job from the lab's state, plain.py, has
    its own)."""

    @property
    def source(self) -> End: ...

    @property
    def destination(self) -> End: ...

    @property
    def same_bridge(self) -> bool: ...


P = TypeVar("P", bound=Path)


def make_job(lab: "Lab", probes: list["Probe"], timeout: float, budget: int | None = None, arp: str = "real",
             dists: list["Distribution"] | None = None) -> Job:
    """The agent's job: a task per probe (and per distribution connection, ids after the probes'), in units."""
    budget = budget if budget is not None else nb.probe_budget()
    tasks = [task_for(i, p) for i, p in enumerate(probes)]
    units, route_src = units_of(probes, [p.name for p in lab.pods], lambda p: probe_entries(lab, p), arp, budget)
    for dist in dists or ():
        first = len(tasks)
        for k in range(dist.connections):
            tasks.append(task_for(first + k, dist.probe))
        phases = [[first], list(range(first + 1, len(tasks)))]
        units.append(Unit(phases=[ph for ph in phases if ph], entries=probe_entries(lab, dist.probe)))
    names = lab.netns_names() + [ns for _, ns in lab.internet_hosts]
    sweep = list(names) + sorted({p.source.netns for p in probes} - set(names))
    untrack = [n.netns for n in lab.nodes]  # where NAT made entries (the gateway routes LoadBalancer IPs untranslated)
    # TCP too: a stopped run deletes the entries of the connections it left open (untrack.py).
    if not any(p.svc is not None or p.proto in ("udp", "tcp") for p in probes) and not dists:
        untrack = []
    return Job(tasks=tasks, units=units, home=lab.underlay_netns, timeout=timeout, budget=budget,
               self_ip={p.netns: POD_IF for p in lab.pods}, route_src=route_src, sweep=sweep, untrack=untrack)


def units_of(probes: Sequence[P], pods: Sequence[str], entries: Callable[[P], list[Entry]], arp: str,
             budget: int) -> tuple[list[Unit], list[tuple[str, str]]]:
    """The units of ``probes`` (task i is ``probes[i]``; ``pods``: the lab's pods' names in its order,
    ``entries``: the neighbour entries a probe's packets create), and the (namespace, destination) of each probe
    sent from outside a pod, whose source address the agent reads (Job.route_src)."""
    order = {name: i for i, name in enumerate(pods)}
    pairs: dict[tuple[str, str], Unit] = {}
    local: dict[tuple[str, str], Unit] = {}
    routed: dict[str, list[tuple[int, list[Entry]]]] = {}
    route_src: set[tuple[str, str]] = set()
    for i, p in enumerate(probes):
        s, d = p.source, p.destination
        if s.kind != "pod":
            route_src.add((s.netns, d.addr))
        # A pair's or a node-pod unit's entries are its first probe's (the others take the same path).
        if p.same_bridge:
            a, b = (s.name, d.name) if order.get(s.name, 0) <= order.get(d.name, 0) else (d.name, s.name)  # as sorted()
            unit = pairs.get((a, b))
            if unit is None:
                if arp == "seeded":
                    pa, pb = (s, d) if s.name == a else (d, s)
                    unit = pairs[(a, b)] = Unit(phases=[[], []], seed=[Seed(pa.netns, POD_IF, pb.addr, pb.netns),
                                                                      Seed(pb.netns, POD_IF, pa.addr, pa.netns)])
                else:
                    unit = pairs[(a, b)] = Unit(phases=[[], []], entries=entries(p))
            unit.phases[0 if s.name == a else 1].append(i)
        elif s.kind == "node" and d.kind == "pod" and d.node == s.name:
            unit = local.get((s.name, d.name))
            if unit is None:
                unit = local[(s.name, d.name)] = Unit(phases=[[]], entries=entries(p))
            unit.phases[0].append(i)
        else:
            routed.setdefault(s.netns, []).append((i, entries(p)))
    units = list(pairs.values()) + list(local.values())
    cap = max(4, budget // 4)
    for items in routed.values():
        ids: list[int] = []
        seen: set[Entry] = set()
        for i, path in items:
            if ids and (len(ids) >= FREE_UNIT or len(seen | set(path)) > cap):
                units.append(Unit(phases=[ids], entries=sorted(seen)))
                ids, seen = [], set()
            ids.append(i)
            seen |= set(path)
        if ids:
            units.append(Unit(phases=[ids], entries=sorted(seen)))
    for u in units:
        u.phases = [ph for ph in u.phases if ph]
    return units, sorted(route_src)
