"""Run a lab's probes: build the matrix, hand it to a forked agent, judge what came back.

The calling process never imports scapy and never enters a namespace: the
agent (agent.py) is a forked child that joins the lab's underlay namespace
before importing scapy, sends everything, and sends its observations back on a
pipe. The parent's wait is bounded too, and it kills the child at the limit.

Service probes and the distribution checks (services.py) go into the same job
as the pod matrix. Egress probes need someone to answer on the internet
hosts: the run starts temporary echo listeners there (listeners.py) before
the agent and stops them after it, whatever happens.
"""

from __future__ import annotations

import os
import pickle
import select
import signal
import time
from dataclasses import dataclass, field
from typing import Iterable

from netlab.errors import EnvironmentNotReady
from netlab.model.lab import Lab
from netlab.probe import neighbours as nb
from netlab.probe import services as svcs
from netlab.probe.matrix import (ECHO_PORT, PROTOS, Observation, Probe, Result, SelfCheck, build_matrix,
                                 echo_ports, internet_host_names, judge)

POD_IF = "eth0"
FREE_UNIT = 256  # routed probes per unit


@dataclass
class Report:
    lab: str
    timeout: float
    results: list[Result]
    self_checks: list[SelfCheck]
    stats: dict = field(default_factory=dict)
    elapsed: float = 0.0
    distributions: list = field(default_factory=list)  # services.DistResult
    notes: list[str] = field(default_factory=list)  # what was not probed, and why

    @property
    def failures(self) -> list[Result]:
        return [r for r in self.results if not r.ok]

    @property
    def self_failures(self) -> list[SelfCheck]:
        return [c for c in self.self_checks if not c.ok]

    @property
    def dist_failures(self) -> list:
        return [d for d in self.distributions if not d.ok]

    @property
    def ok(self) -> bool:
        return not self.failures and not self.self_failures and not self.dist_failures

    @property
    def as_expected(self) -> int:
        return sum(1 for r in self.results if r.ok)


ARP_MODES = ("auto", "real", "seeded")
# Above this many ARP deliveries (pairs of pods on one bridge x ports on that
# bridge: every ARP request is flooded to every port) "auto" seeds the pairs.
# 50 pods on a bridge: 61,250 (real ARP, about 0.3 s); 200 pods: 3,980,000
# (about 6 s of kernel time with real ARP, under 2 s seeded).
SEED_ABOVE = 1_000_000


def arp_flood_cost(lab: Lab) -> int:
    per_node: dict[str, int] = {}
    for p in lab.pods:
        per_node[p.node] = per_node.get(p.node, 0) + 1
    return sum(k * (k - 1) // 2 * (k + 1) for k in per_node.values())


def choose_arp(lab: Lab, arp: str = "auto") -> str:
    """real: every pair of pods on one bridge resolves the other by ARP (what a learner sees).
    seeded: each pod's ARP is still checked from its node (node -> pod probes resolve it),
    but pod pairs use the pods' own MACs as temporary PERMANENT entries: no ARP floods."""
    if arp not in ARP_MODES:
        raise ValueError(f"arp mode {arp!r}: want one of {', '.join(ARP_MODES)}")
    if arp == "auto":
        return "seeded" if arp_flood_cost(lab) > SEED_ABOVE else "real"
    return arp


def probe_entries(lab: Lab, p: Probe) -> list:
    if p.svc is not None or p.destination.kind == "host":
        return svcs.path_entries(lab, p)
    return nb.path_entries(lab, p.source, p.destination)


def task_for(i: int, p: Probe):
    from netlab.probe.agent import Task

    return Task(id=i, src=p.source.netns, dst=p.destination.addr, proto=p.proto, port=p.port or 0,
                service=p.svc is not None, wait_reply=p.echo is not False)


def make_job(lab: Lab, probes: list[Probe], timeout: float, budget: int | None = None, arp: str = "real",
             dists: list | None = None):
    """The agent's job: tasks, and units that say which neighbour entries their packets create.

    Units (see agent.py): a pair of pods on one bridge (both directions, the
    first before the second), a node and one of its own pods, and batches of
    routed probes from one source (Service and egress probes among them), cut
    so that one batch never needs more than a quarter of the budget. With
    ``arp="seeded"`` pair units carry the PERMANENT entries to make instead of
    dynamic entries to count. Each distribution check (services.Distribution)
    is a unit of its own, task ids after the probes' in order: its first
    connection alone (so a ClientIP affinity entry exists), then the rest at once.
    """
    from netlab.probe.agent import Job, Task, Unit

    budget = budget if budget is not None else nb.probe_budget()
    order = {p.name: i for i, p in enumerate(lab.pods)}
    tasks: list[Task] = []
    pairs: dict[tuple[str, str], Unit] = {}
    local: dict[tuple[str, str], Unit] = {}
    routed: dict[str, list[tuple[int, list]]] = {}
    route_src: set[tuple[str, str]] = set()
    for i, p in enumerate(probes):
        s, d = p.source, p.destination
        tasks.append(task_for(i, p))
        if s.kind != "pod":
            route_src.add((s.netns, d.addr))
        entries = probe_entries(lab, p)
        if p.same_bridge:
            a, b = sorted((s.name, d.name), key=lambda n: order.get(n, 0))
            unit = pairs.get((a, b))
            if unit is None:
                if arp == "seeded":
                    pa, pb = (s, d) if s.name == a else (d, s)
                    unit = pairs[(a, b)] = Unit(phases=[[], []], seed=[(pa.netns, POD_IF, pb.addr, pb.netns),
                                                                      (pb.netns, POD_IF, pa.addr, pa.netns)])
                else:
                    unit = pairs[(a, b)] = Unit(phases=[[], []], entries=entries)
            unit.phases[0 if s.name == a else 1].append(i)
        elif s.kind == "node" and d.kind == "pod" and d.node == s.name:
            unit = local.get((s.name, d.name))
            if unit is None:
                unit = local[(s.name, d.name)] = Unit(phases=[[]], entries=entries)
            unit.phases[0].append(i)
        else:
            routed.setdefault(s.netns, []).append((i, entries))
    units = list(pairs.values()) + list(local.values())
    cap = max(4, budget // 4)
    for src, items in routed.items():
        ids: list[int] = []
        seen: set = set()
        for i, entries in items:
            if ids and (len(ids) >= FREE_UNIT or len(seen | set(entries)) > cap):
                units.append(Unit(phases=[ids], entries=sorted(seen)))
                ids, seen = [], set()
            ids.append(i)
            seen |= set(entries)
        if ids:
            units.append(Unit(phases=[ids], entries=sorted(seen)))
    for d in dists or ():
        first = len(tasks)
        for k in range(d.connections):
            tasks.append(task_for(first + k, d.probe))
        units.append(Unit(phases=[[first], list(range(first + 1, len(tasks)))],
                          entries=probe_entries(lab, d.probe)))
    for u in units:
        u.phases = [ph for ph in u.phases if ph]
    names = lab.netns_names() + [ns for _, ns in lab.internet_hosts]
    sweep = list(names) + sorted({p.source.netns for p in probes} - set(names))
    untrack = [n.netns for n in lab.nodes] + [ns for name, ns in lab.internet_hosts if name == "lb"]
    if not any(p.svc is not None for p in probes) and not dists:
        untrack = []
    return Job(tasks=tasks, units=units, home=lab.underlay_netns, timeout=timeout, budget=budget,
               self_ip={p.netns: POD_IF for p in lab.pods}, route_src=sorted(route_src), sweep=sweep,
               untrack=untrack)


def run(lab: Lab, timeout: float = 1.0, protos: Iterable[str] = PROTOS, budget: int | None = None,
        workers: int = 0, arp: str = "auto", services: bool = True) -> Report:
    """Probe a running lab; every wait bounded. Needs root.

    ``services``: also probe the lab's Services, their distribution, and
    egress to the internet hosts.
    """
    from netlab.probe import listeners
    from netlab.workload.processes import is_netns_mount

    t0 = time.monotonic()
    if not is_netns_mount(lab.underlay_netns):
        raise EnvironmentNotReady(f"lab {lab.name} is not up (no namespace {lab.underlay_netns}); "
                                  f"run `sudo netlab up` first")
    protos = tuple(protos)
    plan = svcs.build(lab, protos) if services else svcs.ServicePlan()
    probes = build_matrix(lab, protos, egress=services) + plan.probes
    missing = {ns for ns in {p.source.netns for p in probes} if not is_netns_mount(ns)}
    runnable = [p for p in probes if p.source.netns not in missing]
    dists = [d for d in plan.distributions if d.probe.source.netns not in missing]
    arp = choose_arp(lab, arp)
    job = make_job(lab, runnable, timeout, budget, arp, dists)
    job.workers = workers
    job.self_ip = {ns: ifname for ns, ifname in job.self_ip.items() if ns not in missing}
    job.sweep = [ns for ns in job.sweep if is_netns_mount(ns)]
    job.untrack = [ns for ns in job.untrack if is_netns_mount(ns)]
    limit = 60 + timeout * (3 + len(job.tasks) / 50)

    host_ns = dict(lab.internet_hosts)
    wanted = sorted({p.destination.name for p in runnable if p.destination.kind == "host"}
                    & set(internet_host_names(lab)))
    with listeners.start([(h, host_ns[h]) for h in wanted if is_netns_mount(host_ns[h])], ECHO_PORT,
                         lifetime=limit + 30) as heard:
        out = _fork_agent(job, limit=limit)

    results: list[Result] = []
    obs_by_probe = {id(p): out.obs.get(i) for i, p in enumerate(runnable)}
    for p in probes:
        if p.source.netns in missing:
            obs = Observation(outcome="error", detail=f"namespace {p.source.netns} does not exist")
        else:
            obs = obs_by_probe[id(p)] or Observation(outcome="skipped", detail="no result from the agent")
        sender = _sender(p, obs, out)
        if p.destination.name in heard.errors and not obs.reached and p.destination.kind == "host":
            obs.outcome = "error"
            obs.detail = f"no echo listener on {p.destination.name}: {heard.errors[p.destination.name]}"
        results.append(Result(p, obs, timeout, judge(p, obs, timeout, sender)))
    dist_results = []
    offset = len(runnable)
    sent = {id(d) for d in dists}
    for d in plan.distributions:
        if id(d) not in sent:
            obs_list = [Observation(outcome="error", detail=f"namespace {d.probe.source.netns} does not exist")
                        ] * d.connections
        else:
            obs_list = [out.obs.get(i) or Observation(outcome="skipped", detail="no result from the agent")
                        for i in range(offset, offset + d.connections)]
            offset += d.connections
        dist_results.append(svcs.judge_distribution(d, obs_list, timeout, d.probe.source.addr))
    checks = [SelfCheck(pod.name, str(pod.ip), out.self_ip.get(pod.netns)) for pod in lab.pods]
    stats = dict(out.stats, arp=arp)
    notes = unprobed_notes(lab, protos) + plan.notes
    notes += [f"{h}: something already listened on {ECHO_PORT} there; it answered the egress probes"
              for h in heard.already]
    return Report(lab.name, timeout, results, checks, stats, time.monotonic() - t0, dist_results, notes)


def _sender(p: Probe, obs: Observation, out) -> str | None:
    """The address the source sent from; completes the agent's view of shared-socket UDP probes."""
    if p.source.kind == "pod":
        sender = p.source.addr
    else:
        sender = out.route_src.get((p.source.netns, p.destination.addr))
    if p.proto == "icmp" and obs.local is None:
        obs.local = sender
    elif p.proto == "udp" and obs.local and obs.local.startswith(":") and sender:
        obs.local = sender + obs.local  # the agent knows the port, the kernel picked the address
    return sender


def unprobed_notes(lab: Lab, protos: Iterable[str]) -> list[str]:
    """Declared UDP ports the matrix leaves out: no echo server there, and UDP silence proves nothing."""
    if "udp" not in set(protos):
        return []
    out = []
    for pod in lab.pods:
        echo = echo_ports(pod)
        for port, protocol in pod.ports:
            if protocol == "UDP" and (port, protocol) not in echo:
                out.append(f"{pod.name} udp/{port}: not probed: its own command serves it, not netlab's echo "
                           f"server, and a silent UDP server cannot be told from a lost packet (TCP is probed "
                           f"on every declared port: a connect is proof)")
    return out


def _fork_agent(job, limit: float):
    """Fork the agent, collect its pickled output from a pipe within ``limit`` seconds."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the agent
        code = 0
        try:
            os.close(r)
            from netlab.probe.agent import run_job

            out = run_job(job)
            payload = pickle.dumps(("ok", out.obs, out.self_ip, out.route_src, out.stats))
        except BaseException as exc:  # noqa: BLE001 - reported to the parent
            import traceback

            payload = pickle.dumps(("error", f"{type(exc).__name__}: {exc}", traceback.format_exc()))
            code = 1
        try:
            view = memoryview(payload)
            while view:
                n = os.write(w, view)
                view = view[n:]
        finally:
            os._exit(code)
    os.close(w)
    chunks: list[bytes] = []
    deadline = time.monotonic() + limit
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([r], [], [], left)[0]:
                os.kill(pid, signal.SIGKILL)
                raise EnvironmentNotReady(f"the probe agent did not finish within {limit:.0f} s; killed it")
            chunk = os.read(r, 1 << 20)
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(r)
        os.waitpid(pid, 0)
    try:
        msg = pickle.loads(b"".join(chunks))
    except Exception:  # noqa: BLE001
        raise EnvironmentNotReady("the probe agent died without a result (run with --debug for details)") from None
    if msg[0] != "ok":
        if os.environ.get("NETLAB_DEBUG"):
            print(msg[2])
        raise EnvironmentNotReady(f"the probe agent failed: {msg[1]}")
    from netlab.probe.agent import Output

    return Output(*msg[1:])


def run_probes(lab: Lab, probes: list[Probe], timeout: float = 1.0) -> list[Result]:
    """Send only ``probes`` (the Python API's ``Lab.reach``): one agent job, judged as :func:`run` judges.

    Pairs of pods on one bridge resolve each other by real ARP; an internet host
    gets its temporary echo listener while the job runs.
    """
    from netlab.probe import listeners
    from netlab.workload.processes import is_netns_mount

    if not is_netns_mount(lab.underlay_netns):
        raise EnvironmentNotReady(f"lab {lab.name} is not up (no namespace {lab.underlay_netns}); "
                                  f"run `sudo netlab up` first")
    job = make_job(lab, probes, timeout, arp="real")
    job.sweep = [ns for ns in job.sweep if is_netns_mount(ns)]
    job.untrack = [ns for ns in job.untrack if is_netns_mount(ns)]
    limit = 60 + timeout * (3 + len(job.tasks) / 50)
    host_ns = dict(lab.internet_hosts)
    wanted = sorted({p.destination.name for p in probes if p.destination.kind == "host"}
                    & set(internet_host_names(lab)))
    with listeners.start([(h, host_ns[h]) for h in wanted if is_netns_mount(host_ns[h])], ECHO_PORT,
                         lifetime=limit + 30) as heard:
        out = _fork_agent(job, limit=limit)
    results = []
    for i, p in enumerate(probes):
        obs = out.obs.get(i) or Observation(outcome="skipped", detail="no result from the agent")
        if p.destination.name in heard.errors and not obs.reached and p.destination.kind == "host":
            obs.outcome = "error"
            obs.detail = f"no echo listener on {p.destination.name}: {heard.errors[p.destination.name]}"
        results.append(Result(p, obs, timeout, judge(p, obs, timeout, _sender(p, obs, out))))
    return results
