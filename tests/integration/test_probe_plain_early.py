"""A first `netlab probe` of a plain lab (no job kept by an earlier run) starts its agent on the job worked out from
the lab's state file before it loads the models (netlab/probe/plain.py, early.py), and judges only what its own job
sent: real namespaces, real traffic, the kernel's neighbour table, a NetworkPolicy that denies some of it."""

from __future__ import annotations

import json
import os

import pytest

from helpers import in_netns, ip_json, lab_namespaces, netlab, state_path
from netlab.api.args import PROTOS
from netlab.probe import early, plain, report as render, runner
from netlab.realize.state import load_state

pytestmark = pytest.mark.root

# Pods on one bridge and across the overlay; pod d's namespace takes no ingress, so some flows must fail.
TOPO = """\
name: {name}
nodes: [{{name: n1}}, {{name: n2}}]
namespaces: [{{name: x}}]
pods: [{{name: a, node: n1}}, {{name: b, node: n1}}, {{name: c, node: n2}}, {{name: d, node: n2, namespace: x}}{more}]
networkPolicies:
  - {{name: deny-in, namespace: x, spec: {{podSelector: {{}}, policyTypes: [Ingress]}}}}
"""
OPTIONS = early.options_key(tuple(PROTOS), 1.0, "auto", True, 0)  # the CLI's defaults


def outcomes(results) -> list[tuple]:
    """Each probe: its flow, what it expects, whether it got through, whether that is as expected."""
    return sorted((r.probe.source.name, r.probe.destination.name, r.probe.proto, r.probe.port, r.probe.expected,
                   r.obs.reached, not r.problems) for r in results)


def cli_outcomes(report: dict) -> list[tuple]:
    return sorted((p["source"], p["destination"], p["protocol"], p["port"], p["expected"] == "reachable",
                   p["observed"] == "reachable", p["as_expected"]) for p in report["probes"])


def dynamic_neighbours(lab: str) -> set[tuple[str, str]]:
    return {(ns, n["dst"]) for ns in lab_namespaces(lab) for n in ip_json("neigh", netns=ns)
            if "PERMANENT" not in n.get("state", [])}


def plain_run(lab: str):
    """A run without an early agent: the job made from the models, after they loaded."""
    return runner.run(load_state(lab).resolved())


def test_a_first_run_takes_the_agent_started_on_its_labs_state_and_judges_the_same(labs):
    lab = labs.name("pj")
    labs.up(TOPO.format(name=lab, more=""))
    keep = state_path(lab, early.KEEP_FILE)
    assert not os.path.exists(keep)  # a first run: no job kept
    run = early.begin(lab, OPTIONS)
    assert run is not None and run.started and run.hosts == []  # before any model is loaded here
    report = runner.run(load_state(lab).resolved(), early=run)
    assert run.claimed and report.ok
    without = plain_run(lab)
    assert without.ok and outcomes(report.results) == outcomes(without.results)
    assert not all(r.probe.expected for r in report.results)  # the policy's denied flows: judged failing, as expected
    assert not os.path.exists(keep)  # a job from the state is not kept: the next run works it out again

    proc = netlab("probe", "--lab", lab, "-o", "json", check=False)  # the CLI's own first run
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr
    assert cli_outcomes(json.loads(proc.stdout)) == outcomes(without.results)
    assert not os.path.exists(keep)  # it took its early agent: a run that sends its own job keeps it
    assert not dynamic_neighbours(lab)  # every entry the runs made is swept


def test_an_early_job_of_a_state_that_is_not_the_labs_is_stopped_and_the_run_sends_its_own(labs, monkeypatch):
    lab = labs.name("pj")
    labs.up(TOPO.format(name=lab, more=""))
    without = plain_run(lab)
    assert without.ok
    of_state = plain.of_state

    def swapped(*args):  # the job of a state that names a's address b's, and b's a's
        facts = of_state(*args)
        addr = {p.name: p.addr for p in facts.pods}
        addr["a"], addr["b"] = addr["b"], addr["a"]
        return facts._replace(pods=[p._replace(addr=addr[p.name]) for p in facts.pods])

    monkeypatch.setattr(plain, "of_state", swapped)
    run = early.begin(lab, OPTIONS)
    monkeypatch.undo()
    assert run is not None and run.started  # an agent sent the wrong job
    report = runner.run(load_state(lab).resolved(), early=run)
    assert not run.claimed and report.ok
    assert outcomes(report.results) == outcomes(without.results)
    assert not dynamic_neighbours(lab)  # the stopped agent swept what it made, and so did the run
    kept = early._read(early.Early(lab, run.state, OPTIONS))
    assert kept is not None and len(kept[0].tasks) == len(report.results)  # the run's own job, kept for the next

    os.unlink(state_path(lab, early.KEEP_FILE))
    run = early.begin(lab, OPTIONS)  # the job of the lab as its state is now ...
    assert run is not None and run.started
    labs.up(TOPO.format(name=lab, more=", {name: e, node: n1}"))  # ... and then a pod more
    report = runner.run(load_state(lab).resolved(), early=run)
    assert not run.claimed and report.ok
    assert "e" in {r.probe.source.name for r in report.results}
    assert outcomes(report.results) == outcomes(plain_run(lab).results)
    assert not dynamic_neighbours(lab)


# No policy, an expect: entry that restates a flow of the matrix: a plain lab whose report needs no model
PLAIN = """\
name: {name}
nodes: [{{name: n1}}, {{name: n2}}]
pods: [{{name: a, node: n1}}, {{name: b, node: n1}}, {{name: c, node: n2}}]
expect: [{{from: n2, to: a, proto: tcp, port: 8080}}]
"""
IMPORTS = {"PYTHONPROFILEIMPORTTIME": "1"}  # -X importtime: each module the CLI loads, on its stderr


def loaded(stderr: str) -> set[str]:
    return {line.rsplit("|", 1)[1].strip() for line in stderr.splitlines() if line.startswith("import time:")}


def judged(report: dict) -> dict:
    """A report's JSON but for its times, the clients' ports and the neighbour table's counts, which differ from run
    to run."""
    for p in report["probes"]:
        p["rtt_ms"] = None
        for key in ("local_address", "seen_client_address"):
            p[key] = p[key] and p[key].split(":")[0]
    report["neighbour_table"] = {k: report["neighbour_table"][k] for k in ("arp", "table_fulls")}
    return {**report, "elapsed_s": None}


def test_a_plain_labs_first_run_is_judged_without_the_models_as_the_models_judge_it(labs):
    """The CLI's first run of a plain lab judges its early agent's answer without loading pydantic or the topology's
    models (probe/plain_report.py: ~0.1 s of CPU beside the agent) and says what a run with the models says; a run
    with a failure (pod c answers no echo request) goes on with the models, and judges the answer it read."""
    lab = labs.name("pj")
    labs.up(PLAIN.format(name=lab))
    proc = netlab("probe", "--lab", lab, "-o", "json", check=False, env=IMPORTS)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    mods = loaded(proc.stderr)
    assert "netlab.probe.plain_report" in mods and "netlab.probe.early" in mods
    assert not {"pydantic", "netlab.model.topology", "netlab.model.lab", "netlab.probe.matrix"} & mods
    assert judged(json.loads(proc.stdout)) == judged(render.to_json(plain_run(lab)))
    assert not os.path.exists(state_path(lab, early.KEEP_FILE))  # the early agent's job: nothing kept

    in_netns(f"{lab}-c", "sysctl", "-qw", "net.ipv4.icmp_echo_ignore_all=1", check=True)
    proc = netlab("probe", "--lab", lab, "-o", "json", check=False, env=IMPORTS)
    assert proc.returncode == 1, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert {"pydantic", "netlab.model.topology"} <= loaded(proc.stderr)  # the failure's hints are the models'
    assert not os.path.exists(state_path(lab, early.KEEP_FILE))  # it claimed the answer read: its job not kept
    ran = json.loads(proc.stdout)
    assert ran["summary"]["not_as_expected"] == 4  # a, b and the nodes to c
    assert judged(ran) == judged(render.to_json(plain_run(lab)))
    assert not dynamic_neighbours(lab)
