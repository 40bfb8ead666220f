"""A plain lab's probe report made without the topology's models (netlab/probe/plain_report.py), the CLI's first run
after `up`: equal, field for field (the report, its JSON, text and JUnit), to the report the run makes with the
models (api.internals.internal_probe, runner.run) of the same agent's answer, over the builtin topologies, the
tests' and the README's (test_probe_plain_job.LABS), each protocol and ARP mode, with and without --services; or
none, and the run goes on with the models: a lab that is not plain or has policies, an odd lab (a killed converge,
its state saved since, a namespace deleted), a failure to explain, an agent that failed. No root: the agent's
answer is made here, as a real one for a lab where everything reaches what it should."""

from __future__ import annotations

import copy
import subprocess
import sys
import time
from dataclasses import replace

import pytest
from test_probe_plain_job import LABS, saved_as_up

from netlab.api import internals
from netlab.errors import EnvironmentNotReady
from netlab.kernel.child import ChildDied
from netlab.model.lab import resolve
from netlab.model.load import load_topology
from netlab.model.topology import Topology
from netlab.probe import early, listeners, plain, plain_report, report as render, runner
from netlab.probe.plain import ECHO_PORT
from netlab.probe.tasks import Observation, Output
from netlab.realize.interrupted import Seen
from netlab.realize.state import LabState
from netlab.workload.terminal import served

VERSION = (1, 2, 3, 4)  # the state file's version (realize.state.state_version), as the early start read it
RUNS = [(("icmp",), "auto", True), (("icmp",), "seeded", False), (("tcp",), "real", True), (("udp",), "auto", False),
        (("icmp", "tcp", "udp"), "auto", True), (("icmp", "tcp", "udp"), "real", False)]


class Agent:
    """An early agent that answers with ``out`` (a copy each time it is read), or fails with ``error``."""

    def __init__(self, out: Output, error: Exception | None = None):
        self.out, self.error = out, error

    def result(self, timeout: float) -> Output:
        if self.error is not None:
            raise self.error
        return copy.deepcopy(self.out)

    def interrupt(self) -> None:
        pass


class ApiLab:
    """An attached api.Lab as internal_probe and plain_report read it: its name, its state, the lab as served."""

    def __init__(self, state: LabState):
        self.name, self._state = state.lab, state

    def state(self) -> LabState:
        return self._state

    def _served(self, state: LabState):
        return served(state.resolved(), state)


def state_of(data) -> LabState:
    lab = resolve(Topology.model_validate(data)) if data is not None else resolve(load_topology(None))
    saved = saved_as_up(lab)
    return LabState(lab=saved["lab"], topology=saved["topology"], netns=saved["netns"], extra=saved["extra"],
                    phase=saved["phase"])


def answer(facts: plain.PlainLab, job, lost: int | None = None, topology: dict | None = None) -> Output:
    """What an agent sees of ``job`` in a lab where every probe gets its echo reply but those ``topology``'s
    ``expect:`` entries say do not (``lost``: that task none either): ICMP replies from the destination, echo lines
    that saw the sender's own address and port."""
    pod_at = {p.addr: p.name for p in facts.pods}
    ends = {e.name: e for e in facts.pods + facts.nodes}
    addr = {e.netns: e.addr for e in facts.pods + facts.nodes}
    denied = {(ends[e["from"]].netns, ends[e["to"]].addr, e.get("proto", "icmp"))
              for e in (topology or {}).get("expect", []) if not e.get("reach", True)}
    obs = {}
    for t in job.tasks:
        if t.id == lost or (t.src, t.dst, t.proto) in denied:
            obs[t.id] = Observation(outcome="timeout")
        elif t.proto == "icmp":
            obs[t.id] = Observation(outcome="reply", rtt=0.0002, reply_from=t.dst, ttl=64)
        else:
            port = 40000 + t.id
            obs[t.id] = Observation(outcome="reply", rtt=0.0003, local=f":{port}" if t.proto == "udp" else
                                    f"{addr[t.src]}:{port}", seen_client=f"{addr[t.src]}:{port}",
                                    server=f"{t.dst}:{t.port}", answered_by=pod_at[t.dst])
    route_src = {(n.netns, p.addr): n.addr for n in facts.nodes for p in facts.pods}
    stats = {"deleted": 7, "peak_entries": 30, "peak_live": 7, "swept": 0, "forgotten": 0, "table_fulls": 0,
             "forced_gc_runs": 0, "entries_before": 20, "entries_after": 20, "budget": job.budget}
    return Output(obs=obs, self_ip={p.netns: p.addr for p in facts.pods}, route_src=route_src, stats=stats)


def started(state: LabState, facts: plain.PlainLab, options, agent) -> early.Early:
    """The CLI's early start of a plain lab (early.begin), its agent ``agent``, in the turn it took."""
    run = early.Early(state.lab, VERSION, options)
    run.job, run.hosts, run.plain, run.began = facts.job(448), [], facts, time.monotonic()
    run.heard, run._child, run._held = listeners.Listeners(ECHO_PORT), agent, True
    return run


def the_models(state: LabState, run, protos, arp, services):
    """The report the run makes with the models (the CLI's internal_probe: its early agent claimed)."""
    return internals.internal_probe(ApiLab(state), None, protos=protos, arp=arp, services=services, early=run,
                                    before=Seen(state.lab, None, None))


def the_cli(state: LabState, run, protos, arp, services):
    """The CLI's: without the models when plain_report can, else with them (cli/probe.py)."""
    return plain_report.report(ApiLab(state), run, protos, 1.0, arp, services) or \
        the_models(state, run, protos, arp, services)


def same(a, b) -> None:
    """Field for field, and as the CLI prints it: JSON, text and JUnit (their run times aside)."""
    a, b = replace(a, elapsed=0.25), replace(b, elapsed=0.25)
    assert a == b
    assert render.to_json(a) == render.to_json(b)
    assert render.text(a) == render.text(b)
    assert render.junit(a) == render.junit(b)


@pytest.fixture
def lab_is_up(monkeypatch):
    """Every namespace is there, and the state file is the version the early start read."""
    for module in (runner, plain_report):
        monkeypatch.setattr(module, "is_netns_mount", lambda ns: True)
    monkeypatch.setattr(plain_report, "state_version", lambda lab: VERSION)


@pytest.mark.parametrize("data, not_plain", [lab[1:] for lab in LABS], ids=[lab[0] for lab in LABS])
@pytest.mark.parametrize("protos, arp, services", RUNS, ids=["-".join(r[0]) + f"-{r[1]}-{r[2]}" for r in RUNS])
def test_a_plain_labs_report_without_the_models_is_the_models_report(data, not_plain, protos, arp, services,
                                                                      lab_is_up):
    state = state_of(data)
    options = early.options_key(protos, 1.0, arp, services, 0)
    facts = plain.of_state(state.lab, saved_as_up(state.resolved()), options)
    if facts is None:
        return  # no job from the state: no early agent of a plain lab (test_probe_plain_job.py)
    out = answer(facts, facts.job(448), topology=state.topology)
    mine = plain_report.report(ApiLab(state), started(state, facts, options, Agent(out)), protos, 1.0, arp, services)
    theirs = the_models(state, started(state, facts, options, Agent(out)), protos, arp, services)
    policies = bool(state.topology.get("networkPolicies"))
    assert (mine is None) == policies  # their verdicts are the models'
    if mine is not None:
        assert mine.ok and mine.results and any(r.probe.source.kind == "node" for r in mine.results)
        unreached = [r for r in mine.results if not r.obs.reached]
        assert len(unreached) == sum(1 for e in state.topology.get("expect", []) if not e.get("reach", True)
                                     and e.get("proto", "icmp") in protos)
        same(mine, theirs)
    else:
        same(the_cli(state, started(state, facts, options, Agent(out)), protos, arp, services), theirs)


@pytest.mark.parametrize("lost", [0, 5])
def test_a_run_with_a_failure_goes_on_with_the_models_and_judges_the_same_answer(lost, lab_is_up):
    data = next(lab[1] for lab in LABS if lab[0] == "three-nodes")
    state, options = state_of(data), early.options_key(("icmp", "tcp", "udp"), 1.0, "auto", True, 0)
    facts = plain.of_state(state.lab, saved_as_up(state.resolved()), options)
    out = answer(facts, facts.job(448), lost=lost)
    run = started(state, facts, options, Agent(out))
    assert plain_report.report(ApiLab(state), run, ("icmp", "tcp", "udp"), 1.0, "auto", True) is None
    assert run._collected is not None and not run.started  # read once: the models' run claims that answer
    mine = the_models(state, run, ("icmp", "tcp", "udp"), "auto", True)
    theirs = the_models(state, started(state, facts, options, Agent(out)), ("icmp", "tcp", "udp"), "auto", True)
    assert not mine.ok and len(mine.failures) == 1
    same(mine, theirs)


@pytest.mark.parametrize("error", [ChildDied("the probe agent died"), RuntimeError("no socket")])
def test_an_agent_that_failed_is_said_by_the_models_run_in_its_words(error, lab_is_up, monkeypatch):
    data = next(lab[1] for lab in LABS if lab[0] == "three-nodes")
    state, options = state_of(data), early.options_key(("icmp",), 1.0, "auto", True, 0)
    facts = plain.of_state(state.lab, saved_as_up(state.resolved()), options)
    monkeypatch.setattr(runner, "load_state", lambda lab: state)  # the lab is up: the agent's own error (_taken_down)
    said = []
    for run in (started(state, facts, options, Agent(None, error)), started(state, facts, options, Agent(None, error))):
        with pytest.raises(EnvironmentNotReady) as info:
            the_cli(state, run, ("icmp",), "auto", True) if not said else the_models(state, run, ("icmp",), "auto",
                                                                                     True)
        said.append(str(info.value))
    assert said[0] == said[1] and said[0].startswith(("the probe agent died", "the probe agent failed: RuntimeError: no socket"))


def converging(state: LabState) -> None:
    from netlab.realize.interrupted import CONVERGING

    state.extra[CONVERGING] = {"changes": ["pods a"]}


@pytest.mark.parametrize("odd", ["policies", "saved since", "underlay gone", "pod gone", "converge killed",
                                 "other options", "kept job", "mtu"])
def test_an_odd_lab_or_run_goes_on_with_the_models_before_the_answer_is_read(odd, lab_is_up, monkeypatch):
    data = next(lab[1] for lab in LABS if lab[0] == "three-nodes")
    state, options = state_of(data), early.options_key(("icmp",), 1.0, "auto", True, 0)
    facts = plain.of_state(state.lab, saved_as_up(state.resolved()), options)
    run = started(state, facts, options, Agent(answer(facts, facts.job(448))))
    protos = ("icmp",)
    if odd == "policies":
        state.topology["networkPolicies"] = [{"name": "x", "spec": {"podSelector": {}}}]
    elif odd == "saved since":
        monkeypatch.setattr(plain_report, "state_version", lambda lab: (1, 2, 3, 5))
    elif odd in ("underlay gone", "pod gone"):
        gone = facts.home if odd == "underlay gone" else facts.pods[3].netns
        monkeypatch.setattr(plain_report, "is_netns_mount", lambda ns: ns != gone)
    elif odd == "converge killed":
        converging(state)
        monkeypatch.setattr(plain_report, "stalled", lambda st: "lab pl3: the `up` that was changing it ended ...")
    elif odd == "other options":
        protos = ("icmp", "tcp")
    elif odd == "kept job":  # an agent started on the job the last run kept (early._read), not the plain lab's
        run.plain, run.job = None, replace(run.job, tasks=run.job.tasks[1:])
    elif odd == "mtu":
        run.options = early.options_key(("icmp", "mtu"), 1.0, "auto", True, 0)
    assert plain_report.report(ApiLab(state), run, protos, 1.0, "auto", True) is None
    assert run.started and run._collected is None  # its answer is the models' run's to read, or its agent stopped


def test_a_plain_labs_report_loads_neither_pydantic_nor_the_models():
    """What the first run after `up` spends beside its agent: the models (pydantic, the topology's classes, the
    lab's validation, the matrix: ~0.1 s of CPU on the 2-core VM), which a plain lab's report does without. Here
    the CLI's modules for it, the report made and rendered as JSON and text, in a process of its own."""
    saved = {"lab": "pl", "phase": "up", "topology": {"name": "pl", "network": {"cni": "builtin", "mode": "vxlan"},
                                                      "nodes": [{"name": "n1"}], "pods": [
        {"name": "a", "node": "n1"}, {"name": "b", "node": "n1"}]}, "extra": {"addresses": {
            "pods": {"a": ["default", "n1", "10.244.0.0/24", "10.244.0.2"],
                     "b": ["default", "n1", "10.244.0.0/24", "10.244.0.3"]},
            "nodes": {"n1": ["192.168.122.2", "10.244.0.0/24"]}}}}
    options = early.options_key(("icmp",), 1.0, "auto", True, 0)
    code = f"""\
import sys, time
import netlab.cli.probe
from netlab.probe import early, listeners, plain, plain_report, report
from netlab.probe.tasks import Observation, Output
from netlab.realize.state import LabState
plain_report.is_netns_mount = lambda ns: True
plain_report.state_version = lambda lab: (1, 2, 3, 4)
saved = {saved!r}
facts = plain.of_state('pl', saved, {options!r})
job = facts.job(100)
class Agent:
    def result(self, timeout):
        return Output(obs={{t.id: Observation(outcome='reply', reply_from=t.dst) for t in job.tasks}},
                      self_ip={{'pl-a': '10.244.0.2', 'pl-b': '10.244.0.3'}}, route_src={{}}, stats={{}})
class Lab:
    name = 'pl'
    def state(self):
        return LabState(lab='pl', topology=saved['topology'], netns={{}}, extra=saved['extra'], phase='up')
run = early.Early('pl', (1, 2, 3, 4), {options!r})
run.job, run.hosts, run.plain, run.began, run._child = job, [], facts, time.monotonic(), Agent()
run.heard = listeners.Listeners(8080)
out = plain_report.report(Lab(), run, ('icmp',), 1.0, 'auto', True)
report.to_json(out), report.text(out)
print(out.ok, len(out.results), sorted(m for m in sys.modules if m.split('.')[0] == 'pydantic' or m in (
    'netlab.model.topology', 'netlab.model.lab', 'netlab.probe.matrix', 'netlab.probe.runner', 'netlab.api.internals')))
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "True 4 []"  # a -> b, b -> a, n1 -> a, n1 -> b


def test_an_agent_on_the_job_the_last_run_kept_is_judged_without_the_models_when_it_is_the_plain_labs(lab_is_up):
    """A run again (the agent started on the kept job: early._read), of a lab whose kept job is the one its state
    gives (plain_report.kept_plain: a run that took no early agent kept it)."""
    data = next(lab[1] for lab in LABS if lab[0] == "host-gw-3node")
    protos = ("icmp", "tcp", "udp")
    state, options = state_of(data), early.options_key(protos, 1.0, "real", True, 0)
    facts = plain.of_state(state.lab, saved_as_up(state.resolved()), options)
    out = answer(facts, facts.job(448), topology=state.topology)
    run = started(state, facts, options, Agent(out))
    run.plain = None
    mine = plain_report.report(ApiLab(state), run, protos, 1.0, "real", True)
    assert mine is not None and mine.ok
    same(mine, the_models(state, started(state, facts, options, Agent(out)), protos, "real", True))
