"""`netlab probe` starts its agent on the lab's last job before it loads the models (netlab/probe/early.py), and
judges only what its own job sent: real namespaces, real traffic, the kernel's neighbour table."""

from __future__ import annotations

import fcntl
import json
import os
import threading
import time

import pytest

from helpers import ip_json, lab_namespaces, netlab, state_path
from netlab.api.args import PROTOS
from netlab import lockfile
from netlab.probe import early, runner, turns
from netlab.realize.state import load_state, state_version

pytestmark = pytest.mark.root

# Pods on a bridge and across the overlay, a Service (ClusterIP, NodePort) and an internet host (egress: the run's
# echo listener there), so that the kept job has every kind of unit and the early start its listener.
TOPO = """\
name: {name}
nodes: [{{name: n1}}, {{name: n2}}]
pods: [{pods}]
internet: {{hosts: [{{name: client, ip: 203.0.113.50}}]}}
services:
  - {{name: w, selector: {{app: w}}, type: NodePort, ports: [{{port: 80, targetPort: 8080}}]}}
"""
PODS = "{name: c, node: n1}, {name: d, node: n2}, {name: w, node: n2, labels: {app: w}}"
OPTIONS = early.options_key(tuple(PROTOS), 1.0, "auto", True, 0)  # the CLI's defaults


def verdicts(report: dict) -> list[tuple[str, str, str, int | None, bool]]:
    return sorted((p["source"], p["destination"], p["protocol"], p["port"], p["as_expected"])
                  for p in report["probes"])


def dynamic_neighbours(lab: str) -> set[tuple[str, str]]:
    return {(ns, n["dst"]) for ns in lab_namespaces(lab) for n in ip_json("neigh", netns=ns)
            if "PERMANENT" not in n.get("state", [])}


@pytest.fixture
def room_as_kept(monkeypatch):
    """The table's room, as the early start reads it, is the budget the kept job was cut for: other labs probed
    or pinging on the machine (pytest-xdist workers) change the real one, and with less room nothing starts."""
    def budget_kept(lab: str) -> None:
        with open(state_path(lab, early.KEEP_FILE)) as fh:
            budget = json.load(fh)["job"]["budget"]
        monkeypatch.setattr(early.nb, "probe_budget", lambda: budget)
    return budget_kept


def probe_json(lab: str) -> dict:
    proc = netlab("probe", "--lab", lab, "-o", "json", check=False)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr
    return json.loads(proc.stdout)


def test_a_second_probe_takes_the_agent_it_started_early_and_judges_the_same(labs, room_as_kept):
    lab = labs.name("pe")
    labs.up(TOPO.format(name=lab, pods=PODS))
    first = probe_json(lab)  # made its job after loading the models, and kept it
    room_as_kept(lab)
    run = early.begin(lab, OPTIONS)
    assert run is not None and run.started  # before any model is loaded here: the kept job, its listener
    assert run.hosts == [("client", f"{lab}-client")]
    report = runner.run(load_state(lab).resolved(), early=run)
    assert run.claimed and report.ok
    assert len(report.results) == len(first["probes"]) and first["ok"]
    assert verdicts(probe_json(lab)) == verdicts(first)  # the CLI's own second run: the same probes, as expected
    assert not dynamic_neighbours(lab)  # every entry the runs made is swept


def test_a_kept_job_that_is_not_the_runs_is_stopped_and_one_from_before_an_up_starts_nothing(labs, room_as_kept):
    lab = labs.name("pf")
    labs.up(TOPO.format(name=lab, pods=PODS))
    first = probe_json(lab)
    room_as_kept(lab)
    keep = state_path(lab, early.KEEP_FILE)
    with open(keep) as fh:
        data = json.load(fh)
    data["job"]["tasks"] = data["job"]["tasks"][:-1]  # under the same key, a job this run would not make
    with open(keep, "w") as fh:
        json.dump(data, fh)
    run = early.begin(lab, OPTIONS)
    assert run is not None and run.started
    report = runner.run(load_state(lab).resolved(), early=run)
    assert not run.claimed and report.ok and len(report.results) == len(first["probes"])
    assert not dynamic_neighbours(lab)  # the stopped agent swept what it made, and so did the run
    kept = early._read(early.Early(lab, state_version(lab), OPTIONS))
    assert kept is not None and len(kept[0].tasks) == len(data["job"]["tasks"]) + 1  # the run's own job, kept

    labs.up(TOPO.format(name=lab, pods=PODS + ", {name: e, node: n1}"))  # a pod more: the lab's state changed
    run = early.begin(lab, OPTIONS)
    assert run is not None and not run.started
    run.close()
    again = probe_json(lab)
    assert "e" in {p["source"] for p in again["probes"]} and again["ok"]


def test_a_run_whose_early_start_sent_nothing_probes_in_the_turn_that_start_waited_for(labs, monkeypatch, tmp_path):
    """The table has less room than the kept job was cut for: the early start sends nothing, and the run sends its
    own job in the turn the early start waited for, once: its turn_wait_s is that wait (it left the turn, and the
    run took another: turn_wait_s ~0, another run's probe between the two, a second wait said). The turn is a lock
    file of the test's own: other runs on the machine neither wait for it nor take it."""
    lab = labs.name("pt")
    labs.up(TOPO.format(name=lab, pods=PODS))
    first = probe_json(lab)
    with open(state_path(lab, early.KEEP_FILE)) as fh:
        budget = json.load(fh)["job"]["budget"]
    monkeypatch.setattr(early.nb, "probe_budget", lambda: budget - 1)  # other labs' entries since
    monkeypatch.setattr(turns, "LOCK_PATH", str(tmp_path / "lock"))
    monkeypatch.setattr(turns, "QUIET_FOR", 0.0)
    said: list[tuple[str, float]] = []
    waits = threading.Event()
    monkeypatch.setattr(lockfile, "tell", lambda text: (said.append((text, time.monotonic())), waits.set()))
    fd = os.open(turns.LOCK_PATH, os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)  # another run's turn
    got: list[early.Early | None] = []
    begun = threading.Thread(target=lambda: got.append(early.begin(lab, OPTIONS)))
    begun.start()
    try:
        assert waits.wait(60), "the early start did not say it waits"
        assert not dynamic_neighbours(lab)  # nothing sent while another run holds the turn
    finally:
        released = time.monotonic()
        os.close(fd)
        begun.join(60)
    run = got[0]
    assert run is not None and not run.started
    report = runner.run(load_state(lab).resolved(), early=run)
    assert report.ok and len(report.results) == len(first["probes"])
    assert len(said) == 1 and said[0][0].startswith(f"lab {lab}: waiting for pid {os.getpid()} (")  # this test
    waited = report.stats["turn_wait_s"]
    assert waited >= round(released - said[0][1], 3) > 0 and report.elapsed >= waited
    assert not dynamic_neighbours(lab)
