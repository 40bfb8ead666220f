"""The CLI's early probe agent (netlab/probe/early.py): the kept job, read back only as it was written, under its
key, naming the lab's own namespaces (no root: no agent is started here; tests/integration/test_probe_early.py
starts them)."""

from __future__ import annotations

import json
import os

import pytest
from test_probe_services import svc_lab

from netlab.probe import early, services as svcs
from netlab.probe.job import make_job
from netlab.probe.matrix import build_matrix
from netlab.realize import state_dir
from netlab.realize.state import state_version

OPTIONS = early.options_key(("icmp", "tcp", "udp"), 1.0, "auto", True, 0)


def a_job(arp: str = "real"):
    """A job of every kind of unit: pairs (real or seeded), node-pod, routed, Service probes and a distribution."""
    lab = svc_lab()
    plan = svcs.build(lab)
    probes = build_matrix(lab, ["icmp", "tcp", "udp"]) + plan.probes
    return make_job(lab, probes, 1.0, budget=200, arp=arp, dists=plan.distributions)


@pytest.mark.parametrize("arp", ["real", "seeded"])
def test_a_job_comes_back_from_its_json_equal(arp):
    job = a_job(arp)
    assert job.units and any(u.seed for u in job.units) == (arp == "seeded")
    assert any(t.behind for t in job.tasks) and job.route_src
    assert early.job_from_json(json.loads(json.dumps(early.job_to_json(job)))) == job


@pytest.fixture
def lab_dir(tmp_path, monkeypatch):
    """The lab "svc" with a state file, its directory under the test's tmp dir."""
    monkeypatch.setattr(state_dir, "STATE_ROOT", str(tmp_path / "state"))
    path = state_dir.lab_dir("svc")
    with open(os.path.join(path, state_dir.STATE_FILE), "w") as fh:
        fh.write("{}")
    return path


def kept(lab_dir):
    with open(os.path.join(lab_dir, early.KEEP_FILE)) as fh:
        return json.load(fh)


def test_a_kept_job_is_read_back_under_its_key_only(lab_dir):
    job, hosts = a_job(), [("example", "svc-example")]
    run = early.Early("svc", state_version("svc"), OPTIONS)
    run.keep(job, hosts)
    assert early._read(early.Early("svc", state_version("svc"), OPTIONS)) == (job, hosts)
    other = early.options_key(("icmp",), 1.0, "auto", True, 0)
    assert early._read(early.Early("svc", state_version("svc"), other)) is None  # another run's options
    with open(os.path.join(lab_dir, state_dir.STATE_FILE + ".new"), "w") as fh:
        fh.write("{}")
    os.replace(os.path.join(lab_dir, state_dir.STATE_FILE + ".new"), os.path.join(lab_dir, state_dir.STATE_FILE))
    assert early._read(early.Early("svc", state_version("svc"), OPTIONS)) is None  # the state was saved since


def rewritten(lab_dir, change):
    data = kept(lab_dir)
    change(data)
    with open(os.path.join(lab_dir, early.KEEP_FILE), "w") as fh:
        json.dump(data, fh)
    return early._read(early.Early("svc", state_version("svc"), OPTIONS))


@pytest.mark.parametrize("change", [
    lambda d: d["job"]["tasks"][0].__setitem__(1, "other-lab-pod"),  # a source namespace not the lab's
    lambda d: d["job"].__setitem__("home", "svc-../../x"),  # not a safe name
    lambda d: d.__setitem__("hosts", [["example", "host-ns"]]),  # a listener outside the lab
    lambda d: d["job"]["tasks"][0].pop(),  # a task of another shape
    lambda d: d["job"]["units"].append("x"),
    lambda d: d.__setitem__("version", 2),
    lambda d: d.pop("job"),
], ids=["task-netns", "home", "host", "task-shape", "unit-shape", "version", "no-job"])
def test_a_kept_job_that_is_not_as_netlab_writes_it_starts_nothing(lab_dir, change):
    early.Early("svc", state_version("svc"), OPTIONS).keep(a_job(), [("example", "svc-example")])
    assert rewritten(lab_dir, change) is None


def test_no_file_a_bad_file_or_a_big_one_starts_nothing_and_a_big_job_is_not_kept(lab_dir, monkeypatch):
    run = early.Early("svc", state_version("svc"), OPTIONS)
    assert early._read(run) is None  # no file yet
    path = os.path.join(lab_dir, early.KEEP_FILE)
    with open(path, "w") as fh:
        fh.write("{not json")
    assert early._read(run) is None
    run.keep(a_job(), [])
    monkeypatch.setattr(early, "FILE_MAX", os.path.getsize(path) - 1)
    assert early._read(run) is None
    monkeypatch.setattr(early, "KEEP_MAX", 3)
    run.keep(a_job(), [])
    assert not os.path.exists(path)  # too big to keep: the old one goes too, it no longer says the last job


def test_begin_names_the_lab_as_every_command_does_and_starts_nothing_without_a_kept_job(lab_dir, monkeypatch):
    """--lab, else $NETLAB_LAB, else the only lab up (realize.lab_name.selected_name): never another lab's job."""
    with open(state_dir.state_file("other", create=True), "w") as fh:
        fh.write("{}")
    monkeypatch.delenv("NETLAB_LAB", raising=False)
    assert early.begin(None, OPTIONS) is None  # two labs up, none named
    monkeypatch.setenv("NETLAB_LAB", "svc")
    assert early.begin(None, OPTIONS).lab == "svc"
    assert early.begin("other", OPTIONS).lab == "other"
    monkeypatch.setenv("NETLAB_LAB", "../x")
    assert early.begin(None, OPTIONS) is None  # not a lab name: the command says so
    run = early.begin("svc", OPTIONS)
    assert run is not None and not run.started and run.state == list(state_version("svc"))
    run.close()


@pytest.mark.parametrize("room, starts", [(199, False), (200, True), (450, True)])
def test_the_agent_starts_only_where_the_table_has_room_for_the_kept_jobs_budget(monkeypatch, room, starts):
    """The kept job was cut for a budget of 200 entries: with less room now, nothing starts (the run makes its own
    job in its turn); with as much or more, the job is sent as it is, its budget kept."""
    import contextlib

    from netlab.probe import listeners, spawn, turns

    taken = []
    monkeypatch.setattr(turns, "probing_turn", lambda lab: contextlib.nullcontext(0.25))
    monkeypatch.setattr(early.nb, "probe_budget", lambda: room)
    monkeypatch.setattr(listeners, "start", lambda hosts, port, lifetime: contextlib.nullcontext(("heard", hosts)))
    monkeypatch.setattr(spawn, "start", lambda job: taken.append(job) or "the agent")
    run = early.Early("svc", [1, 2, 3], OPTIONS)
    job = a_job()
    run.start(job, [])
    assert run.started == starts and taken == ([job] if starts else [])
    if starts:
        assert run.claim(job, []) == "the agent" and run.claimed and run.waited == 0.25
        assert run.heard == ("heard", [])


def test_the_early_start_and_the_agent_load_no_model():
    """The CLI starts the agent on a kept job before it loads the topology's models (early.begin), so that the agent
    probes while they load: early, the agent and its workers import none of them. neighbours.py importing the
    matrix at its top loaded them all first (~0.1 s), and the early agent started only after."""
    import subprocess
    import sys

    saved = {"lab": "pl", "phase": "up", "topology": {"name": "pl", "network": {"cni": "builtin"}, "nodes": [
        {"name": "n1"}], "pods": [{"name": "a", "node": "n1"}, {"name": "b", "node": "n1"}]}, "extra": {"addresses": {
            "pods": {"a": ["default", "n1", "10.244.0.0/24", "10.244.0.2"],
                     "b": ["default", "n1", "10.244.0.0/24", "10.244.0.3"]},
            "nodes": {"n1": ["192.168.122.2", "10.244.0.0/24"]}}}}
    code = ("import sys\nimport netlab.probe.early, netlab.probe.agent, netlab.probe.worker\n"
            "from netlab.probe import plain\n"  # a plain lab's job from its state (early.begin, with no kept job)
            f"job = plain.of_state('pl', {saved!r}, {OPTIONS!r}).job(100)\n"
            "print(len(job.tasks), sorted(m for m in sys.modules if m.split('.')[0] == 'pydantic' or m in "
            "('netlab.model.topology', 'netlab.model.lab', 'netlab.probe.matrix', 'netlab.plan.cniadd')))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "12 []"  # a -> b, b -> a and n1 -> each, for each of ICMP, TCP and UDP


def test_the_early_start_loads_nothing_its_agent_does_not_need():
    """What the CLI loads before it forks the early agent is all in series with the probing: the early start, the
    agent and its workers load neither shutil (and with it bz2, lzma, fnmatch: netns.find_tool's), subprocess
    (netns.run_in_netns's), the echo server's argparse (an egress listener's, loaded when a run has one) nor
    traceback (a failed child's): ~5 ms of a first run's 0.3 s, before its agent started."""
    import subprocess
    import sys

    code = ("import sys\nimport netlab.probe.early, netlab.probe.agent, netlab.probe.worker, netlab.probe.plain\n"
            "print(sorted(m for m in ('shutil', 'bz2', 'lzma', 'fnmatch', 'subprocess', 'argparse', 'traceback', "
            "'netlab.workload.echo', 'netlab.kernel.own_group') if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_the_cli_forks_its_agent_without_loading_the_agent():
    """The agent's and its workers' modules (sockets, sweep, conntrack's netlink, the worker: ~4-5 ms) are loaded by
    the forked child (spawn.py), after the fork, not by the CLI before it: the CLI's process, which only reads the
    agent's result, loads none of them, neither for the early start nor for the run's own job (runner.py)."""
    import subprocess
    import sys

    code = ("import sys\nimport netlab.cli.probe, netlab.probe.early, netlab.probe.plain, netlab.probe.runner\n"
            "print(sorted(m for m in ('netlab.probe.agent', 'netlab.probe.worker', 'netlab.probe.sockets', "
            "'netlab.probe.sweep', 'netlab.probe.untrack', 'netlab.probe.budget', 'netlab.probe.transports') "
            "if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_nothing_before_the_early_agents_fork_loads_openssl():
    """hashlib loads OpenSSL's libcrypto (~3 ms): the names, the state's stamp and a small lab's state sum are
    hashed before the CLI forks its early agent (model/digest.py: Python's own SHA-256 and BLAKE2b), in series with
    the probing; the models that load after the fork (pydantic's secrets) load it then."""
    import subprocess
    import sys

    code = ("import sys\nimport netlab.cli.probe, netlab.probe.early, netlab.probe.plain, netlab.lab.readahead\n"
            "import netlab.probe.agent, netlab.probe.worker\n"
            "from netlab.model import naming\nfrom netlab.kernel import nstag\nfrom netlab.realize import state_sum\n"
            "naming.short_hash('a'), naming.mac_from_hash('a'), nstag.lab_hash('a'), state_sum.stamp()\n"
            "print('_hashlib' in sys.modules)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "False"


def test_an_agent_forked_while_the_cli_loads_collects_its_own_garbage():
    """The CLI forks the early agent while it loads, its cycle collector off (netlab/launch.py): the agent switches
    it on for what it makes (a 500-pod run sends 250,000 probes), what it inherited set aside (gc.freeze)."""
    import subprocess
    import sys

    code = ("import gc, sys\ngc.disable()\n"
            "from netlab.probe import agent\n"
            "agent.nsmod.join = lambda netns: None\n"
            "agent.nb.keep_stats_open = lambda: None\n"
            "agent.Agent.run = lambda self: (gc.isenabled(), gc.get_freeze_count() > 1000)\n"
            "print(agent.run_job(agent.Job(tasks=[], units=[], home=\"lab-underlay\", timeout=1.0, budget=8)))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "(True, True)"
