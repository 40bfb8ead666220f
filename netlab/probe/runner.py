"""Run a lab's probes: build the matrix, hand it to a forked agent, judge what came back.

The calling process never enters a namespace: the agent (agent.py) is a
forked child that joins the lab's underlay namespace, sends everything, and
sends its observations back on a pipe. The parent's wait is bounded too, and it kills the child at the limit.

Service probes and the distribution checks (services.py) go into the same job
as the pod matrix. Egress probes need someone to answer on the internet
hosts: the run starts temporary echo listeners there (listeners.py) before
the agent and stops them after it, whatever happens.
"""

from __future__ import annotations

import os
import time
from dataclasses import replace
from typing import Iterable

from netlab.errors import (EXIT_CHECKS_FAILED, EnvironmentNotReady, NetlabError, UsageError, from_file_way, open_files,
                           open_files_line)
from netlab.kernel.child import Child, ChildDied, ChildError, ChildTimeout
from netlab.kernel.netns import is_netns_mount
from netlab.model.lab import Lab
from netlab.probe import bypass, clash, hairpin, impaired, listeners, nodeport_pods, turns
from netlab.probe import services as svcs
from netlab.probe.distribution import judge_distribution
from netlab.probe.early import Collected, Early, options_key
from netlab.probe import spawn
from netlab.probe.job import choose_arp, make_job
from netlab.probe.judge import Report, Result, SelfCheck
from netlab.probe.matrix import (ECHO_PORT, PROTOS, Probe, build_matrix, internet_host_names,
                                 nothing_to_probe, silent_udp_ports, terminated_notes, touches_terminated)
from netlab.probe.outcomes import result_of as _result
from netlab.probe.refused import Refusals
from netlab.probe.service_targets import ServicePlan
from netlab.probe.tasks import Job, Observation, Output
from netlab.realize.interrupted import being_taken_down, taken_down
from netlab.realize.lab_lock import lab_lock_holder
from netlab.realize.state import load_state


def run(lab: Lab, timeout: float = 1.0, protos: Iterable[str] = PROTOS, budget: int | None = None,
        workers: int = 0, arp: str = "auto", services: bool = True, early: Early | None = None) -> Report:
    """Probe a running lab; every wait bounded. Needs root.

    ``services``: also probe the lab's Services, their distribution, and
    egress to the internet hosts. ``early``: the CLI's agent started on the
    lab's last job before the models loaded (early.py), taken when this run's
    job is the same; this run's job is kept for the next.
    """
    t0 = time.monotonic()
    if not is_netns_mount(lab.underlay_netns):
        raise not_up(lab)
    protos = tuple(protos)
    if early is not None and (budget is not None or early.options != options_key(protos, timeout, arp, services,
                                                                                  workers)):
        early.close()  # started for other options: not this run's
        early = None
    probes, plan = planned(lab, protos, services)
    if not probes and not plan.distributions:  # before anything is sent: a run that checks nothing is no pass
        raise UsageError(nothing_to_probe(lab, protos))
    missing = missing_namespaces(lab, probes)  # a pod's or node's deleted behind netlab's back: nothing sent from it
    probes = [p for p in probes if p.source.netns not in missing]  # not probed: no "unreachable as expected"
    plan.distributions = [d for d in plan.distributions if d.probe.source.netns not in missing]
    runnable, dists = probes, plan.distributions
    arp = choose_arp(lab, arp)
    out, heard = _send(lab, runnable, timeout, arp, budget, dists, workers, early)
    results: list[Result] = []
    obs_by_probe = {id(p): out.obs.get(i) for i, p in enumerate(runnable)}
    refusals = Refusals(lab.name)
    for p in probes:
        obs = obs_by_probe[id(p)] or Observation(outcome="skipped", detail="no result from the agent")
        results.append(_result(p, obs, timeout, out, heard, refusals))
    dist_results = []
    offset = len(runnable)
    for d in plan.distributions:
        obs_list = [out.obs.get(i) or Observation(outcome="skipped", detail="no result from the agent")
                    for i in range(offset, offset + d.connections)]
        offset += d.connections
        dist_results.append(judge_distribution(d, obs_list, timeout, d.probe.source.addr))
    # a deleted pod's eth0 is not there to read: its line says it; nor a CNI lab's terminal pod's, whose stopped
    # sandbox's DEL took it (cni/terminated.py): its note says it has terminated
    checks = [SelfCheck(pod.name, str(pod.ip), out.self_ip.get(pod.netns)) for pod in lab.pods
              if pod.netns not in missing and not (lab.cni != "builtin" and pod.name in lab.terminal)]
    stats = dict(out.stats, arp=arp)
    gone = deleted_namespaces(lab, missing)
    notes = terminated_notes(lab) + [deleted_note(kind, name, line) for kind, name, line in gone]
    notes += unprobed_notes(lab, protos) + plan.notes
    notes += [f"{h}: something already listened on {ECHO_PORT} there; it answered the egress probes"
              for h in heard.already]
    renumbered = clash.explain(lab, results)  # a port conntrack moved to keep reply tuples unique: no NAT fault
    began = early.began if early is not None and early.served else t0  # the early start's time is the run's
    # What explains failures: a port conntrack renumbered, a Service's endpoints, a bridge, netlab's own impairments
    hints = renumbered + _hints(lab, results) + impaired.hints(lab, results, dist_results, timeout) \
        + hairpin.hints(lab, results)
    return Report(lab.name, timeout, results, checks, stats, time.monotonic() - began, dist_results, notes,
                  hints, bridge=plan.bridge, deleted=[line for _, _, line in gone],
                  deleted_kinds=[kind for kind, _, _ in gone])


def planned(lab: Lab, protos: tuple[str, ...], services: bool) -> tuple[list[Probe], ServicePlan]:
    """A run's probes and its Services' plan (their distribution checks), none to or from a terminal pod."""
    plan = svcs.build(lab, protos) if services else ServicePlan()
    probes = [as_nodeport(p, plan, lab) for p in build_matrix(lab, protos, egress=services)] + plan.probes
    probes = [p for p in probes if not touches_terminated(lab, p)]  # a Completed/Error pod: nothing runs there
    plan.distributions = [d for d in plan.distributions if not touches_terminated(lab, d.probe)]
    return probes, plan


DELETED = ": its flows not probed: "  # a pod's or node's note, as policy table's (api/results_probe.DELETED reads it)
# The simulated internet's gateway and load balancer send no probes of their own (probes go through them): their
# note says what each is, and status's line (api/results_probe.PARTS reads it)
PARTS = {"gateway": ", the internet's gateway: ", "lb": ", the load balancer: "}


def deleted_note(kind: str, name: str, line: str) -> str:
    """The note of a pod, node, internet host, gateway or load balancer (``kind``) whose namespace was deleted:
    ``line`` is status's (exec's, trace's) line for it, ``up`` the fix."""
    return f"{name}{PARTS.get(kind, DELETED)}{line}"


def missing_namespaces(lab: Lab, probes: list[Probe]) -> set[str]:
    """The probes' source namespaces that are not there, and every node's and internet host's of ``lab``: a node's
    namespace deleted while a process holds it leaves its pods' veths working, but the lab is not as planned."""
    others = [n.netns for n in lab.nodes] + [ns for _, ns in lab.internet_hosts]
    return missing_sources(probes) | {ns for ns in others if not is_netns_mount(ns)}


def deleted_namespaces(lab: Lab, missing: set[str]) -> list[tuple[str, str, str]]:
    """Each pod, node, internet host, the internet's gateway and load balancer of ``lab`` whose namespace is in
    ``missing`` (deleted behind netlab's back: ``ip netns delete``), as (kind, name, line): kind ``pod``,
    ``node``, ``host``, ``gateway`` or ``lb``; the line exec, trace and ``policy table`` say of it
    (workload.reconfigure.lab_netns_gone: ``up`` makes it again, or list's line for a lab a down or up left
    halfway), in the topology's order, pods first."""
    if not missing:
        return []
    from netlab.workload.reconfigure import lab_netns_gone

    named = ([("pod", p.name, p.netns) for p in lab.pods] + [("node", n.name, n.netns) for n in lab.nodes]
             + [(h if h in PARTS else "host", h, ns) for h, ns in lab.internet_hosts])  # no host is so named
    return [(kind, name, str(lab_netns_gone(ns, lab.name))) for kind, name, ns in named if ns in missing]


def as_nodeport(probe: Probe, plan: ServicePlan, lab: Lab | None = None) -> Probe:
    """A user's ``expect:`` entry to a node's nodePort, judged as the Service probe it is: the node DNATs it to an
    endpoint, which answers, and masquerades it (KUBE-EXT) to its own address towards that endpoint, so the
    endpoint sees neither the client's address nor the node's as dialed (rules 1 to 3 are about pods' own
    addresses). The entry keeps its expectation; the Service's rules say which client address is right."""
    if probe.destination.kind != "node" or probe.port is None or not probe.reason.startswith("expect["):
        return probe
    svc = plan.nodeports.get((probe.destination.name, probe.proto, probe.port))
    if svc is None:
        return probe
    key = (probe.source.name, probe.destination.name, probe.proto, probe.port)
    rules = plan.local_rules.get(key, svc.rules)
    mine = nodeport_pods.probe(lab, plan, *key) if lab is not None else None  # a pod's own rules (a hairpin, ...)
    if isinstance(mine, Probe):
        rules = mine.rules
    return replace(probe, section=svc.section, rules=rules, echo=svc.echo, question=svc.question, svc=svc.svc)


def _hints(lab: Lab, results: list[Result]) -> list[str]:
    """Why some failures were to be expected: a Service whose endpoints do not serve its port (or that has
    none), where its probes failed; where a node's bridge let through the pod-to-pod flows a NetworkPolicy
    denies (bridge-nf-call-iptables 0)."""
    from netlab.model.endpoints import service_notes

    failed = {f"service {r.probe.svc.namespace}/{r.probe.svc.service.split('/')[-1]} port " for r in results
              if r.problems and r.probe.svc is not None}
    out = [note for note in service_notes(lab) if note.startswith(tuple(failed))] if failed else []
    opened = [(r.probe.source.name, r.probe.destination.name, r.probe.proto, r.probe.port) for r in results
              if r.obs.reached and not r.probe.expected and r.probe.svc is None
              and r.probe.source.kind == r.probe.destination.kind == "pod"]
    if not opened or not lab.topo.network_policies:
        return out
    return out + bypass.hints(lab, opened, bypass.unfiltered_nodes(lab))


def run_probes(lab: Lab, probes: list[Probe], timeout: float = 1.0) -> list[Result]:
    """Send only ``probes`` (the Python API's ``Lab.reach``): one agent job, judged as :func:`run` judges.

    Pairs of pods on one bridge resolve each other by real ARP; an internet host
    gets its temporary echo listener while the job runs.
    """
    if not is_netns_mount(lab.underlay_netns):
        raise not_up(lab)
    missing = missing_sources(probes)  # `ip netns del` of a pod: its probes left out, as run leaves them
    runnable = [p for p in probes if p.source.netns not in missing]
    out, heard = _send(lab, runnable, timeout, "real")
    obs = {id(p): out.obs.get(i) for i, p in enumerate(runnable)}
    refusals = Refusals(lab.name)
    return [_result(p, _not_there(p) if p.source.netns in missing else obs[id(p)] or Observation(
        outcome="skipped", detail="no result from the agent"), timeout, out, heard, refusals) for p in probes]


def missing_sources(probes: list[Probe]) -> set[str]:
    """The probes' source namespaces that are not there (deleted behind netlab's back): nothing is sent from them."""
    return {ns for ns in {p.source.netns for p in probes} if not is_netns_mount(ns)}


def _not_there(p: Probe) -> Observation:
    """What a probe from a namespace that is not there observed: an error naming it (nothing was sent)."""
    return Observation(outcome="error", detail=f"namespace {p.source.netns} does not exist")


def _send(lab: Lab, probes: list[Probe], timeout: float, arp: str, budget: int | None = None,
          dists: list = (), workers: int = 0, early: Early | None = None) -> tuple[Output, listeners.Listeners]:
    """One agent job for these probes (and distribution checks), with echo listeners on the
    internet hosts they go to; every wait bounded. The early agent's output when it was sent this very job."""
    host_ns = dict(lab.internet_hosts)
    wanted = sorted({p.destination.name for p in probes if p.destination.kind == "host"}
                    & set(internet_host_names(lab)))
    hosts = [(h, host_ns[h]) for h in wanted if is_netns_mount(host_ns[h])]
    if early is not None and early.job is not None:
        job = _job(lab, probes, timeout, early.job.budget, arp, dists, workers)
        child = early.claim(job, hosts)
        if child is not None:
            try:
                out = _agent_output(lab, job, child)
            finally:
                early.close()  # the listeners, the turn
            assert early.heard is not None
            out.stats["turn_wait_s"] = round(early.waited, 3)
            return out, early.heard
    # The run's turn on the machine's neighbour table (turns.py) comes first: the budget
    # is the room the table has once the run before has swept its entries. The early start's, when it took one.
    with early.turn() if early is not None else turns.probing_turn(lab.name) as waited:
        job = _job(lab, probes, timeout, budget, arp, dists, workers)
        with listeners.start(hosts, ECHO_PORT, lifetime=job.limit() + 30) as heard:
            out = _agent_output(lab, job)
    out.stats["turn_wait_s"] = round(waited, 3)
    if early is not None:
        early.keep(job, hosts)
    return out, heard


def _job(lab: Lab, probes: list[Probe], timeout: float, budget: int | None, arp: str, dists: list,
         workers: int) -> Job:
    """The agent's job, of the namespaces that are there."""
    job = make_job(lab, probes, timeout, budget, arp, list(dists))
    job.workers = workers
    job.self_ip = {ns: ifname for ns, ifname in job.self_ip.items() if is_netns_mount(ns)}
    job.sweep = [ns for ns in job.sweep if is_netns_mount(ns)]
    job.untrack = [ns for ns in job.untrack if is_netns_mount(ns)]
    return job


def _agent_output(lab: Lab, job: Job, child: Child | Collected | None = None) -> Output:
    """What the agent (forked now, or ``child``, started early: or its answer, read already) saw of ``job``."""
    try:
        return _fork_agent(job, limit=job.limit(), child=child)
    except EnvironmentNotReady:
        down = _taken_down(lab, job)
        if down is not None:  # in the words exec, logs, get pods and trace say it
            raise down from None
        raise


def not_up(lab: Lab) -> NetlabError:
    """The error of a probe of lab ``lab`` whose underlay namespace is not there: a ``down`` taking the lab away,
    a lab whose namespaces are all gone (realize.interrupted.taken_down: the words status and get say); of a lab
    that is up (its state is there) status's words: the namespace was deleted and ``up`` makes it again, exit 1 as
    a lab that is not as planned (nothing can be probed without the underlay the agent joins); else not up."""
    down = taken_down(lab.name, "its namespaces go with it", killed=f"no namespace {lab.underlay_netns}")
    if down is not None:
        return down
    from netlab.workload.reconfigure import lab_netns_gone

    gone = lab_netns_gone(lab.underlay_netns, lab.name)
    if gone.lab_up and gone.taken_down is None:
        gone.exit_code = EXIT_CHECKS_FAILED
        return gone
    return EnvironmentNotReady(
        f"lab {lab.name} is not up (no namespace {lab.underlay_netns}); start it with `{from_file_way(api=False)}`")


def _taken_down(lab: Lab, job: Job) -> NetlabError | None:
    """Why the agent was stopped, when the lab is going: `netlab down` marks the lab's state "deleting" and holds
    its lock while it stops every process in the lab's namespaces (the probe's agent among them), then deletes them
    and its state. At work still: the lab is being taken down; done with it already (no state): it was taken down
    and is not up (realize.interrupted.taken_down's words). A down killed halfway (nobody holds the lock) stopped
    nothing of this run: list's line, given a namespace of the job now missing; None for a lab that is up."""
    what = "the probe's agent was stopped with the lab's other processes"
    try:
        state = load_state(lab.name)
    except NetlabError:  # corrupt: not this question's to answer
        return None
    if state is None:  # the down finished before the run looked: not "being taken down"
        return taken_down(lab.name, what)
    if state.phase == "deleting" and lab_lock_holder(lab.name) is not None:
        return being_taken_down(lab.name, what)
    gone = [ns for ns in (lab.underlay_netns, *job.sweep) if not is_netns_mount(ns)]
    return taken_down(lab.name, what, killed=f"no namespace {gone[0]}") if gone else None


def unprobed_notes(lab: Lab, protos: Iterable[str]) -> list[str]:
    """Declared UDP ports the matrix leaves out: no echo server there, and UDP silence proves nothing."""
    if "udp" not in set(protos):
        return []
    return [f"{pod.name} udp/{port}: not probed: its own command serves it, not netlab's echo server, and a "
            f"silent UDP server cannot be told from a lost packet (TCP is probed on every declared port: a connect "
            f"is proof)" for pod in lab.pods for port in silent_udp_ports(pod)]


def _fork_agent(job: Job, limit: float, child: Child | Collected | None = None) -> Output:
    """The agent in a forked child (it joins the lab's namespace), or ``child``, an agent already sent ``job``;
    bounded wait (spawn.start: its grace when interrupted or at the limit)."""
    try:
        return (child or spawn.start(job)).result(limit)
    except ChildTimeout:
        raise EnvironmentNotReady(f"the probe agent did not finish within {limit:.0f} s; killed it") from None
    except ChildDied:
        raise EnvironmentNotReady("the probe agent died without a result "
                                  "(for details: netlab --debug <command> ...)") from None
    except Exception as exc:  # noqa: BLE001 - whatever the agent raised, in one line
        if os.environ.get("NETLAB_DEBUG"):
            print("\n".join(getattr(exc, "__notes__", [])))
        limit = open_files(exc)
        if limit is not None:  # its open-files limit, in the doctor's words (QA q50 3: a raw OSError)
            raise EnvironmentNotReady(f"the probe agent ran out of descriptors: {open_files_line(limit)}") from None
        what = str(exc) if type(exc) is ChildError else f"{type(exc).__name__}: {exc}"
        raise EnvironmentNotReady(f"the probe agent failed: {what}") from None
