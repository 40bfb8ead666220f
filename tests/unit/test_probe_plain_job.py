"""A plain lab's probe job from its state file (netlab/probe/plain.py), before the CLI loads the models: equal to the
job the run makes from the models (runner.planned, runner._job: make_job), or none at all. The CLI's run takes the
early agent only when the two are equal (early.Early.claim); this compares them over the builtin topologies, the
tests' and the README's, labs with policies, Services, an internet, several nodes, containers, expect: entries."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from cni_fakes import cni_topo
from helpers import two_node_topology
from netpol_cases import CASES, model as netpol_model

from netlab.model.lab import resolve
from netlab.model.load import load_topology
from netlab.model.topology import Topology
from netlab.probe import early, plain, runner
from netlab.probe.job import choose_arp
from netlab.realize.state import ADDRESSES, LabState

ROOT = Path(__file__).resolve().parents[2]
THREE = {"name": "pl3", "network": {"mode": "host-gw"}, "nodes": [{"name": f"n{i}"} for i in range(3)],
         "pods": [{"name": f"p{i}", "node": f"n{i % 3}"} for i in range(14)]}


def topo(name: str, **changes) -> dict:
    return {**THREE, "name": name, **changes}


def yaml_file(path: str) -> dict:
    with open(ROOT / path) as fh:
        return yaml.safe_load(fh)


# (id, topology dict, the protocols of the runs whose job is not worked out from the state)
ALL, OWN_PORTS = {"icmp", "tcp", "udp"}, {"tcp", "udp"}
LABS = [
    ("default", None, set()),
    ("default-2node", yaml_file("topologies/default-2node.yaml"), set()),
    ("vxlan-3node", yaml_file("topologies/vxlan-3node.yaml"), set()),  # expect: entries of the matrix's flows
    ("host-gw-3node", yaml_file("topologies/host-gw-3node.yaml"), set()),
    ("netpol-3x3", yaml_file("topologies/netpol-3x3.yaml"), OWN_PORTS),  # containers: their ports
    ("services", yaml_file("topologies/services.yaml"), ALL),
    ("readme-lab", yaml_file("examples/pytest/lab.yaml"), ALL),  # a Service
    ("two-node", yaml.safe_load(two_node_topology("pl2")), set()),
    ("two-node-host-gw", yaml.safe_load(two_node_topology("pl2", "host-gw", 3)), set()),
    ("three-nodes", topo("pl3"), set()),
    ("one-pod", topo("pl1", pods=[{"name": "a", "node": "n0"}]), set()),
    ("one-node-many", topo("plm", nodes=[{"name": "n1"}], pods=[{"name": f"p{i}", "node": "n1"} for i in range(30)]),
     set()),
    *[(f"netpol-{c['name']}", netpol_model("plp", c["policies"]), OWN_PORTS) for c in CASES[:4]],
    ("policy-no-containers", topo("plq", namespaces=[{"name": "x"}], pods=[
        {"name": "a", "node": "n0", "namespace": "x", "labels": {"app": "a"}}, {"name": "b", "node": "n1"}],
        networkPolicies=[{"name": "deny", "namespace": "x", "spec": {"podSelector": {}, "policyTypes": ["Ingress"]}}]),
     set()),
    ("container-no-ports", topo("plc", pods=[{"name": "a", "node": "n0", "containers": [{"name": "c"}]},
                                            {"name": "b", "node": "n1"}]), OWN_PORTS),
    ("container-command", topo("plk", pods=[{"name": "a", "node": "n0", "containers": [
        {"name": "c", "command": ["sleep", "1000"], "ports": [{"containerPort": 9000}]}]},
        {"name": "b", "node": "n1"}]), OWN_PORTS),
    ("restart-never", topo("pln", pods=[{"name": "a", "node": "n0", "restartPolicy": "Never"},
                                       {"name": "b", "node": "n1"}]), ALL),
    ("expect-another-flow", topo("ple", expect=[{"from": "p0", "to": "n1"}]), {"icmp"}),  # to a node
    ("expect-another-port", topo("plo", expect=[{"from": "p0", "to": "p1", "proto": "tcp", "port": 9000}]),
     {"tcp"}),  # a run without TCP leaves it out
    ("expect-same-flows", topo("pls", expect=[{"from": "n0", "to": "p1", "reach": False},
                                              {"from": "p0", "to": "p2", "proto": "udp", "port": 8080}]), set()),
    ("internet", topo("pli", internet={"hosts": [{"name": "h", "ip": "203.0.113.50"}]}), ALL),
    ("service", topo("plv", services=[{"name": "s", "selector": {"app": "a"}, "ports": [{"port": 80}]}]),
     ALL),
]
RUNS = [(("icmp",), "auto", 448), (("icmp",), "seeded", 32), (("tcp",), "real", 200), (("udp",), "auto", 32),
        (("icmp", "tcp", "udp"), "auto", 448), (("icmp", "tcp", "udp"), "real", 16)]


def saved_as_up(lab) -> dict:
    """The lab's state file as `up` saves it (lab/up.py: the topology as resolved, the addresses it holds)."""
    st = LabState(lab=lab.name, topology=lab.topo.model_dump(mode="json", by_alias=True, exclude_none=True),
                  netns={ns: "created" for ns in lab.netns_names()}, extra={ADDRESSES: lab.held().to_json()},
                  phase="up")
    return json.loads(json.dumps({"lab": st.lab, "run_id": st.run_id, "topology": st.topology, "source": None,
                                  "netns": st.netns, "extra": st.extra, "phase": st.phase}))


def runs_job(saved: dict, protos, arp: str, budget: int, monkeypatch):
    """The job runner.run sends for the lab the state names, its models loaded as the CLI loads them."""
    st = LabState(lab=saved["lab"], topology=saved["topology"], netns=saved["netns"], extra=saved["extra"],
                  phase=saved["phase"])
    lab = st.resolved()
    monkeypatch.setattr(runner, "is_netns_mount", lambda ns: True)  # the lab is up
    probes, plan = runner.planned(lab, tuple(protos), True)
    probes = [p for p in probes if p.source.netns not in runner.missing_namespaces(lab, probes)]
    return runner._job(lab, probes, 1.0, budget, choose_arp(lab, arp), plan.distributions, 0)


@pytest.mark.parametrize("data, not_plain", [lab[1:] for lab in LABS], ids=[lab[0] for lab in LABS])
@pytest.mark.parametrize("protos, arp, budget", RUNS, ids=["-".join(r[0]) + f"-{r[1]}-{r[2]}" for r in RUNS])
def test_a_plain_labs_job_from_its_state_is_the_runs_job(data, not_plain, protos, arp, budget, monkeypatch):
    lab = resolve(Topology.model_validate(data)) if data is not None else resolve(load_topology(None))
    saved = saved_as_up(lab)
    facts = plain.of_state(lab.name, saved, early.options_key(protos, 1.0, arp, True, 0))
    assert (facts is not None) == (not not_plain & set(protos))
    if facts is not None:
        job = facts.job(budget)
        assert job == runs_job(saved, protos, arp, budget, monkeypatch)
        assert job.tasks and job.units and all(ns.startswith(f"{lab.name}-") for ns in early._namespaces(job, []))


def test_the_job_of_a_lab_that_is_not_plain_or_not_as_netlab_writes_it_is_none():
    lab = resolve(Topology.model_validate(topo("plx")))
    saved = saved_as_up(lab)
    options = early.options_key(("icmp",), 1.0, "auto", True, 0)
    assert plain.of_state("plx", saved, options) is not None
    assert plain.of_state("ply", saved, options) is None  # another lab's state
    assert plain.of_state("plx", saved, early.options_key(("icmp", "mtu"), 1.0, "auto", True, 0)) is None
    assert plain.of_state("plx", saved, early.options_key(("icmp",), 1.0, "never", True, 0)) is None
    for change in (lambda s: s.__setitem__("phase", "creating"), lambda s: s["extra"].pop(ADDRESSES),
                   lambda s: s["extra"][ADDRESSES]["pods"]["p3"].__setitem__(3, "10.244.1.x"),
                   lambda s: s["extra"][ADDRESSES]["nodes"].pop("n2"),
                   lambda s: s["topology"]["pods"][0].__setitem__("name", "../x"),
                   lambda s: s["topology"]["pods"][0].__setitem__("node", "n9"),
                   lambda s: s["topology"]["network"].__setitem__("cni", "reference"),
                   lambda s: s["topology"].__setitem__("pods", "p0"), lambda s: s.clear()):
        broken = json.loads(json.dumps(saved))
        change(broken)
        assert plain.of_state("plx", broken, options) is None


def test_a_cni_labs_pods_are_where_their_plugins_put_them_so_its_job_is_not_worked_out(tmp_path):
    data = yaml.safe_load(cni_topo("plcni") + "  - {name: a, node: n1}\n  - {name: b, node: n1}\n")
    data["network"]["cni"] = {"conflist": str(tmp_path / "net.conflist"), "binDir": str(tmp_path / "bin")}
    saved = saved_as_up(resolve(Topology.model_validate(data)))
    assert plain.of_state("plcni", saved, early.options_key(("icmp",), 1.0, "auto", True, 0)) is None


def test_a_plain_labs_agent_is_forked_before_its_job_is_worked_out(state_root, monkeypatch):
    """What the CLI does before it forks its early agent is in series with the probing: a plain lab's job (~5 ms at 50
    pods) is worked out by the agent, after the fork, and by the run meanwhile (its copy, claimed against)."""
    import contextlib

    from netlab.probe import spawn, turns

    lab = resolve(Topology.model_validate(topo("plf")))
    LabState(lab="plf", topology=lab.topo.model_dump(mode="json", by_alias=True, exclude_none=True),
             netns={ns: "created" for ns in lab.netns_names()}, extra={ADDRESSES: lab.held().to_json()},
             phase="up").save()
    events = []
    job_of = plain.PlainLab.job
    monkeypatch.setattr(plain.PlainLab, "job", lambda self, budget: events.append("job") or job_of(self, budget))
    monkeypatch.setattr(turns, "probing_turn", lambda name: contextlib.nullcontext(0.0))
    monkeypatch.setattr(early.nb, "probe_budget", lambda: 123)
    monkeypatch.setattr(spawn, "start", lambda job: events.append("fork") or "the agent")
    run = early.begin("plf", early.options_key(("icmp",), 1.0, "auto", True, 0))
    assert run.started and events == ["fork", "job"] and run.job is not None and run.job.budget == 123
    assert run.claim(run.job, []) == "the agent"
    run.close()


def test_begin_starts_a_plain_labs_job_from_its_state_only_as_netlab_wrote_it(state_root, monkeypatch):
    """No kept job: the CLI's early start works one out from a state this netlab wrote (its sum matches), cut for
    the room the table has in the run's turn; not from one edited since (the run checks it whole, and says)."""
    import contextlib

    from netlab.probe import listeners, spawn, turns
    from netlab.realize.state_dir import state_file

    lab = resolve(Topology.model_validate(topo("plb")))
    st = LabState(lab="plb", topology=lab.topo.model_dump(mode="json", by_alias=True, exclude_none=True),
                  netns={ns: "created" for ns in lab.netns_names()}, extra={ADDRESSES: lab.held().to_json()},
                  phase="up")
    st.save()
    taken = []
    monkeypatch.setattr(turns, "probing_turn", lambda name: contextlib.nullcontext(0.0))
    monkeypatch.setattr(early.nb, "probe_budget", lambda: 123)
    monkeypatch.setattr(listeners, "start", lambda hosts, port, lifetime: contextlib.nullcontext(("heard", hosts)))
    monkeypatch.setattr(spawn, "start", lambda job: taken.append(job() if callable(job) else job) or "the agent")
    options = early.options_key(("icmp",), 1.0, "auto", True, 0)
    run = early.begin("plb", options)
    with open(state_file("plb"), "rb") as fh:
        raw = fh.read()
    job = plain.of_state("plb", json.loads(raw), options).job(123)
    assert run.started and taken == [job] and run.claim(job, []) == "the agent"
    run.close()
    with open(state_file("plb"), "wb") as fh:
        fh.write(raw + b"\n")  # the same lab, but not the bytes netlab wrote
    run = early.begin("plb", options)
    assert not run.started and len(taken) == 1
    run.close()
