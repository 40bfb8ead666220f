"""A plain lab's probe report, judged without the topology's models: the CLI's first run after ``up``.

A first run's agent starts on a job worked out from the lab's state file (plain.py, early.py) while the CLI
loads pydantic and the topology's models (~0.1 s of CPU on the 2-core VM), which it needed only to build the
matrix the report is judged against, and to say what a lab that is not as planned is. For a plain lab whose
every probe comes back as expected, neither is needed: this builds the matrix matrix.build_matrix builds for
it (every pod and node to every other pod, the ``expect:`` entries that restate its flows, in its order),
reads the agent's answer, judges it with the same functions (outcomes.py, judge.py) and makes the same report
(runner.run, api.internals.internal_probe), field for field: tests/unit/test_probe_plain_report.py compares
the two over the builtin topologies, the tests' and the README's.

An agent started on the job the last run kept (a run again: early._read) is taken so too, when that job is the
one plain.py works out from the state file it is kept under (:func:`kept_plain`).

Anything else goes down the model path, which says it (:func:`report` returns None):

- a lab that is not plain (plain.of_state), or has NetworkPolicies (their verdicts are the models'), or whose
  state file is not the one the early start read (another version: an up, a converge, an impair since);
- a lab an ``up`` or ``down`` left halfway (realize/interrupted.stalled: list's line, said first), one whose
  underlay, node or pod namespaces are not all there (status's and exec's lines, the run's refusal);
- an agent that failed (its error, in the words of runner._fork_agent), and a run with anything not as
  expected: a refusal to explain by the destination's sockets, a failed probe or address (their hints, a
  command that held the lab meanwhile). That run judges the very answer read here (early.Collected), without
  probing again; only reading it was done before the models loaded.
"""

from __future__ import annotations

import time
from ipaddress import IPv4Address
from typing import Any, Mapping

from netlab.kernel.netns import is_netns_mount
from netlab.model.naming import BRIDGE
from netlab.probe import plain
from netlab.probe.early import Early, options_key
from netlab.probe.judge import Report, SelfCheck
from netlab.probe.outcomes import result_of
from netlab.probe.plain import ECHO_PORT, PlainLab
from netlab.probe.probes import ORDER, Endpoint, Probe
from netlab.probe.refused import Refusals
from netlab.realize.interrupted import stalled
from netlab.realize.state import LabState, state_version


def report(lab: Any, early: Early | None, protos: tuple[str, ...], timeout: float, arp: str, services: bool
           ) -> Report | None:
    """The report of ``lab`` (an api.Lab, attached) as internal_probe makes it of the run ``early`` started,
    made without the models; None when the run must go on with them (the module's list)."""
    if (early is None or not early.started or early.job is None or early.hosts or early.lab != lab.name
            or early.options != options_key(protos, timeout, arp, services, 0)):
        return None
    state = lab.state()  # as internal_probe reads it (and says what is wrong with it, the same way)
    if not isinstance(state, LabState) or early.state is None or state_version(lab.name) != tuple(early.state):
        return None  # not the state file the job was worked out from, or kept under
    facts = early.plain or kept_plain(state, early)
    if facts is None:
        return None
    topo = state.topology
    if topo.get("networkPolicies") or stalled(state) is not None:
        return None
    if not all(is_netns_mount(ns) for ns in (facts.home, *(e.netns for e in facts.pods + facts.nodes))):
        return None
    probes = matrix(facts, topo)
    try:
        out = early.collect()
    except Exception:  # noqa: BLE001 - the model path claims the error and says it in its words
        return None
    seen = [out.obs.get(i) for i in range(len(probes))]
    if not probes or not all(o is not None and o.outcome != "refused" for o in seen):
        return None  # no answer of the agent's for a probe, or a refusal, explained once by the run that judges it
    assert early.heard is not None
    refusals = Refusals(lab.name)
    results = [result_of(p, o, timeout, out, early.heard, refusals) for p, o in zip(probes, seen) if o is not None]
    checks = [SelfCheck(p.name, p.addr, out.self_ip.get(p.netns)) for p in facts.pods]
    if not all(r.ok for r in results) or not all(c.ok for c in checks):
        return None  # what explains it (hints, a command meanwhile) is the models'
    out.stats["turn_wait_s"] = round(early.waited, 3)
    notes = [f"{h}: something already listened on {ECHO_PORT} there; it answered the egress probes"
             for h in early.heard.already]
    return Report(lab.name, timeout, results, checks, dict(out.stats, arp=facts.arp), time.monotonic() - early.began,
                  [], notes, [], bridge=BRIDGE, deleted=[], deleted_kinds=[])


def kept_plain(state: LabState, early: Early) -> PlainLab | None:
    """The plain lab of ``state`` (the file the job the last run kept is keyed with: early._read), when that job is
    the one plain.py works out for it (a run of the models kept it: its job was not a plain lab's, or the run took
    no early agent); else None. ~5 ms of CPU at 50 pods, beside the agent."""
    saved = {"lab": state.lab, "topology": state.topology, "phase": state.phase, "extra": state.extra}
    facts = plain.of_state(state.lab, saved, early.options)
    return facts if facts is not None and early.job is not None and facts.job(early.job.budget) == early.job else None


def matrix(facts: PlainLab, topo: Mapping[str, Any]) -> list[Probe]:
    """matrix.build_matrix of a plain lab without NetworkPolicies, from its state's topology: ICMP, TCP and UDP to
    the echo server's port from every pod and node to every other pod, then its ``expect:`` entries (each restates
    a flow of the matrix: plain._restates), in the matrix's order."""
    eps = {e.name: Endpoint(e.name, e.kind, e.netns, IPv4Address(e.addr), node=e.node, bridge=e.bridge)
           for e in facts.nodes + facts.pods}
    pods, nodes = [eps[p.name] for p in facts.pods], [eps[n.name] for n in facts.nodes]
    host_gw = topo["network"]["mode"] == "host-gw"
    probes: dict[tuple, Probe] = {}
    for src in pods + nodes:
        for dst in pods:
            if src.name == dst.name:
                continue
            if "icmp" in facts.protos:
                probes[(src.name, dst.name, "icmp", None)] = Probe(src, dst, "icmp", None, True)
            kept = not (host_gw and src.kind == "node" and dst.node != src.name)  # matrix.Probe.port_kept
            for proto in ("tcp", "udp"):  # a pod of no container's: the echo server's port and its UDP twin
                if proto in facts.protos:
                    probes[(src.name, dst.name, proto, ECHO_PORT)] = Probe(src, dst, proto, ECHO_PORT, True,
                                                                          echo=True, port_kept=kept)
    for i, exp in enumerate(topo.get("expect") or ()):
        proto = exp.get("proto", "icmp")
        if proto not in facts.protos:
            continue
        key = (exp["from"], exp["to"], proto, None if proto == "icmp" else exp.get("port"))
        old = probes[key]  # plain._restates: a flow of the matrix
        probes[key] = Probe(old.source, old.destination, proto, old.port, bool(exp.get("reach", True)),
                            reason=f"expect[{i}]", echo=old.echo, port_kept=old.port_kept)
    order = {name: i for i, name in enumerate([p.name for p in pods] + [n.name for n in nodes])}
    return sorted(probes.values(), key=lambda p: (ORDER.index(p.proto), p.port or 0, order[p.source.name],
                                                  order[p.destination.name]))
