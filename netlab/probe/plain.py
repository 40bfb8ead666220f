"""A plain lab's probe job, worked out from its state file before the CLI loads the topology's models (early.py).

A run of ``netlab probe`` with no job kept by an earlier run of the same lab (the first after ``up``) made its
job only once the models were loaded, ~0.15 s into the run, and only then forked its agent: its path was all
in series. For a plain lab the job of an ICMP, TCP or UDP run follows from the lab's state file alone, so its
agent starts as early as a kept job's:

- netlab's own CNI (cni0 on every node with a pod, each pod's address the one the lab holds), no Service (nor
  the cluster DNS that comes with them), no ``internet:``, ``expect:`` entries only of flows the matrix probes
  anyway, no pod that can terminate (restartPolicy Always), the lab up; for TCP and UDP, pods that list no
  container (the echo server on 8080, both protocols);
- the matrix of such a lab is every pod and node to every other pod (probe/matrix.py's order: by protocol,
  then source, pods then nodes, then destination, in the topology's order); NetworkPolicies change what a
  probe expects, never which probes are sent;
- its units are make_job's own (job.units_of, with neighbours.entries_between's entries), of the pods' and
  nodes' names (model/naming.py) and the addresses the state holds (``extra.addresses``, Held.to_json).

The state file is taken only as this netlab wrote it (its sum: early._plain), and not validated again here
(as lab/readahead.py reads it): anything of another shape means no job.
The run takes the agent only when this job is equal to the one it makes from the models (Early.claim): one
that differs is a lost head start, never a wrong verdict. tests/unit/test_probe_plain_job.py compares the two
over the builtin topologies, the tests' and labs with policies, Services, several nodes and containers.
A run whose every probe is as expected, of a lab with no NetworkPolicy, judges the agent's answer without the
models at all (plain_report.py).
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network
from typing import Any, Mapping, NamedTuple

from netlab.model.echo_ports import ECHO_DEFAULT_PORT as ECHO_PORT  # matrix.ECHO_PORT (matrix loads the models)
from netlab.model.naming import BRIDGE, netns_name
from netlab.probe.job import POD_IF, arp_mode, units_of
from netlab.probe.neighbours import NodeFacts, entries_between
from netlab.probe.tasks import Job, Task

PROTOS = ("icmp", "tcp", "udp")  # in matrix.ORDER's order


class End(NamedTuple):
    """A pod or node as matrix.Endpoint has it, for the job (neighbours.End)."""

    name: str
    kind: str
    netns: str
    addr: str
    node: str | None
    bridge: str | None


class PlainProbe(NamedTuple):
    """A probe as job.units_of reads it (job.Path)."""

    source: End
    destination: End
    same_bridge: bool


class PlainLab(NamedTuple):
    """What the job of a plain lab needs of it, from its state (:func:`of_state`)."""

    pods: list[End]
    nodes: list[End]
    facts: dict[str, NodeFacts]
    home: str
    protos: tuple[str, ...]
    arp: str  # real or seeded (job.arp_mode)
    options: Mapping[str, Any]

    def job(self, budget: int) -> Job:
        """The job runner.run makes of this lab with these options, cut for ``budget`` entries (make_job)."""
        probes: list[PlainProbe] = []
        tasks: list[Task] = []
        for proto in self.protos:
            port = 0 if proto == "icmp" else ECHO_PORT
            for s in self.pods + self.nodes:
                for d in self.pods:
                    if s.name != d.name:
                        tasks.append(Task(len(tasks), s.netns, d.addr, proto, port))
                        probes.append(PlainProbe(s, d, s.bridge is not None and s.bridge == d.bridge))
        devs = {p.name: BRIDGE for p in self.pods}  # neighbours.node_devices: the pods' bridge
        units, route_src = units_of(probes, [p.name for p in self.pods],
                                    lambda p: entries_between(self.facts, devs, p.source, p.destination),
                                    self.arp, budget)
        nodes = [n.netns for n in self.nodes]
        return Job(tasks=tasks, units=units, home=self.home, timeout=float(self.options["timeout"]), budget=budget,
                   workers=int(self.options["workers"]), self_ip={p.netns: POD_IF for p in self.pods},
                   route_src=route_src, sweep=[self.home, *nodes, *(p.netns for p in self.pods)],
                   untrack=nodes if set(self.protos) & {"tcp", "udp"} else [])


def of_state(lab: str, saved: Any, options: Mapping[str, Any]) -> PlainLab | None:
    """Lab ``lab``'s facts from its state file's unvalidated contents ``saved``, for a run with ``options``
    (early.options_key); None when the lab or the run is not a plain one, or the state not as netlab writes it."""
    try:
        return _of_state(lab, saved, options)
    except (KeyError, TypeError, ValueError, AttributeError, IndexError):
        return None


def _of_state(lab: str, saved: Any, options: Mapping[str, Any]) -> PlainLab | None:
    protos = tuple(p for p in PROTOS if p in options["protos"])
    topo = saved["topology"]
    if (len(protos) != len(options["protos"]) or saved["lab"] != lab or topo["name"] != lab
            or saved["phase"] != "up" or topo["network"]["cni"] != "builtin"
            or any(topo.get(key) for key in ("internet", "services"))):
        return None
    pods = topo["pods"]
    if not pods or any(p.get("restartPolicy", "Always") != "Always" for p in pods):
        return None  # no pod: nothing to probe (the run says so); Never/OnFailure: a pod that can terminate
    if protos != ("icmp",) and any(p.get("containers") for p in pods):
        return None  # containers of the user's: their own ports
    held = saved["extra"]["addresses"]
    facts: dict[str, NodeFacts] = {}
    nodes: list[End] = []
    for n in topo["nodes"]:
        name = n["name"]
        ip, cidr = held["nodes"][name]
        facts[name] = NodeFacts(netns_name(lab, name), str(IPv4Address(ip)),
                                str(IPv4Network(cidr).network_address + 1))  # NodeInfo.gateway: cni0's
        nodes.append(End(name, "node", facts[name].netns, facts[name].ip, name, None))
    ends = []
    for p in pods:
        name, node = p["name"], p["node"]
        if node not in facts:
            return None
        ends.append(End(name, "pod", netns_name(lab, name), str(IPv4Address(held["pods"][name][3])), node,
                        f"{node}/{BRIDGE}"))  # matrix.endpoints: one bridge per node
    if not all(_restates(e, protos, {p.name for p in ends}, set(facts)) for e in topo.get("expect") or ()):
        return None
    arp = arp_mode(options["arp"], (p["node"] for p in pods))
    return PlainLab(ends, nodes, facts, netns_name(lab, "underlay"), protos, arp, options)


def _restates(entry: Mapping[str, Any], protos: tuple[str, ...], pods: set[str], nodes: set[str]) -> bool:
    """An ``expect:`` entry that sends nothing the matrix does not (matrix.build_matrix: it sets the expectation of
    the matrix's probe of its flow, or is of a protocol the run leaves out), of a plain lab's run of ``protos``."""
    proto = entry.get("proto", "icmp")
    src, dst = entry["from"], entry["to"]
    return proto not in protos or (src in pods | nodes and dst in pods and src != dst
                                   and (proto == "icmp" or entry.get("port") == ECHO_PORT))
