"""The commands netlab prints for the user to type next name the lab (`--lab NAME`): typed as printed, they act on
that lab whatever other lab is up. Without it they failed (exit 2, "several labs are up; pick one with --lab
NAME") as soon as a second lab was up: `break`'s "investigate: sudo netlab probe; sudo netlab trace SRC DST",
`quiz`'s "then: sudo netlab quiz answer SCENARIO", `inspect`'s "(every entry: netlab inspect NAME --section
conntrack)", `status`'s "see `netlab logs POD -c C`", a trace's "look at the firewall: netlab inspect ...".

No root: the kernel's answers are stubs. The integration tests check the same lines on real labs
(test_cli_habits_live.py, test_exit_codes.py, test_probe.py, test_workload.py)."""

from __future__ import annotations

import json
import types

import pytest
from cli_inprocess import run_cli

from helpers import two_node_topology
from netlab.breaks import catalogue
from netlab.breaks.run import BreakResult
from netlab.errors import netlab_command
from netlab.cli.inspect_text import conntrack_lines
from netlab.model.lab import resolve
from netlab.model.load import load_topology
from netlab.realize.state import LabState, repair_command
from netlab.workload import drift as container_drift
from netlab.workload import lifecycle

LAB = "qx1f"


@pytest.fixture
def rooted(state_root, monkeypatch):
    """The break and quiz commands as root, on a lab whose kernel change is a stub."""
    monkeypatch.delenv("NETLAB_LAB", raising=False)
    monkeypatch.setattr("netlab.cli.breaks.require_root", lambda: None)
    monkeypatch.setattr("netlab.breaks.run.break_lab",
                        lambda lab, name, target=None, wait=60.0, holder=None: BreakResult(
                            lab, name, "minikube", ["a change"]))
    monkeypatch.setattr("netlab.cli.breaks._faults_before", lambda name, reader="break", left_out=None: 0)  # the lab is as planned


def test_break_names_the_lab_in_every_command_it_prints(rooted):
    got = run_cli("break", "pod-mtu-too-big", "--lab", LAB)
    assert got.returncode == 0, got
    # the scenario's own probe flag (--mtu) kept after --lab; the repair names the lab too (its state unreadable
    # here: `up --lab`, where it was a plain `sudo netlab up`, the built-in lab's)
    assert got.stdout.splitlines()[-1] == (f"investigate: {netlab_command(f'probe --lab {LAB} --mtu')}; "
                                           f"{netlab_command(f'trace --lab {LAB} SRC DST')}; "
                                           f"repair: {netlab_command(f'up --lab {LAB}')}")


def test_break_names_the_trace_that_shows_a_fault_a_plain_trace_misses(rooted, monkeypatch):
    """QA: conntrack-stale-entry's `expect:` names port 40053, yet `investigate:` said `trace SRC DST`, whose
    fresh source port passes: the hint names the client and the Service, with --sport 40053."""
    monkeypatch.setattr("netlab.breaks.run.break_lab", lambda lab, name, target=None, wait=60.0, holder=None:
                        BreakResult(lab, name, "client", ["a change"]))
    got = run_cli("break", "conntrack-stale-entry", "--lab", LAB)
    assert got.returncode == 0, got
    assert got.stdout.splitlines()[-1] == (f"investigate: {netlab_command(f'probe --lab {LAB}')}; "
                                           f"{netlab_command(f'trace --lab {LAB} client svc/kube-system/kube-dns --sport 40053')}; "
                                           f"repair: {netlab_command(f'up --lab {LAB}')}")
    from netlab.breaks.changes import STALE_SPORT

    assert f"--sport {STALE_SPORT}" in catalogue.scenario("conntrack-stale-entry").trace  # the port the break keeps


def test_the_repair_of_a_lab_whose_state_cannot_be_read_names_it(state_root):
    assert repair_command(LAB) == netlab_command(f"up --lab {LAB}")


def test_quiz_names_the_lab_in_what_to_type_next(rooted, monkeypatch):
    from netlab.breaks import quiz as qz

    s = catalogue.scenario("vxlan-arp-missing")
    monkeypatch.setattr(qz, "load", lambda name: None)
    monkeypatch.setattr(qz, "pick", lambda lab, seed: s)
    monkeypatch.setattr(qz, "record", lambda *a: None)
    monkeypatch.setattr("netlab.realize.state.running_lab", lambda name: types.SimpleNamespace(resolved=lambda: None))
    monkeypatch.setattr("netlab.workload.terminal.served", lambda lab, state: lab)  # no terminal pod
    got = run_cli("quiz", "--lab", LAB, "--seed", "7")
    assert got.returncode == 0, got
    assert got.stdout == (f"lab {LAB} is broken (quiz seed 7). Find what is wrong: "
                          f"{netlab_command(f'probe --lab {LAB}')}, {netlab_command(f'trace --lab {LAB}')}, "
                          f"{netlab_command(f'inspect --lab {LAB}')}, ip ...; then: "
                          f"{netlab_command(f'quiz answer --lab {LAB} SCENARIO')} (netlab break --list)\n")
    monkeypatch.setattr(qz, "load", lambda name: {"scenario": s.name, "target": "minikube"})
    again = run_cli("quiz", "--lab", LAB)
    assert again.returncode == 2 and again.stderr == (  # sudo: as every root command it prints
        f"netlab: lab {LAB} has a quiz open; answer it first: {netlab_command(f'quiz answer --lab {LAB} SCENARIO')} "
        f"(or give up: {netlab_command(f'quiz answer --lab {LAB} --reveal')})\n"), again
    monkeypatch.setattr(qz, "load", lambda name: None)
    none = run_cli("quiz", "answer", "vxlan-arp-missing", "--lab", LAB)
    assert none.returncode == 2 and none.stderr == (f"netlab: lab {LAB} has no open quiz; start one with: "
                                                    f"{netlab_command(f'quiz --lab {LAB}')}\n"), none


def test_quiz_refuses_a_lab_broken_already_and_break_warns(rooted, monkeypatch):
    """`break ip-forward-off; quiz --seed 7` broke the lab a second time, and the answer's "trace that shows it"
    ended at the first fault. The quiz starts on a clean lab only (exit 2, as with a quiz open: nothing changed);
    break, asked for by name, still breaks, and warns that the symptoms are not its fault's alone."""
    from netlab.breaks import quiz as qz

    changed: list[object] = []
    monkeypatch.setattr("netlab.cli.breaks._faults_before", lambda name, reader="break", left_out=None: 2)
    monkeypatch.setattr(qz, "load", lambda name: None)
    monkeypatch.setattr(qz, "record", lambda *a: changed.append(a))
    monkeypatch.setattr("netlab.breaks.run.break_lab", lambda *a, **k: changed.append(a) or BreakResult(
        LAB, a[1], "minikube", ["a change"]))
    got = run_cli("quiz", "--lab", LAB, "--seed", "7")
    assert (got.returncode, got.stdout, changed) == (2, "", []), got
    assert got.stderr == (f"netlab: lab {LAB} is not as planned (2 differences from its plan; "
                          f"`{netlab_command(f'status --lab {LAB}')}` lists them): a quiz breaks a clean lab; repair "
                          f"it first: {netlab_command(f'up --lab {LAB}')}\n")
    broke = run_cli("break", "pod-mtu-too-big", "--lab", LAB)
    assert broke.returncode == 0 and len(changed) == 1, broke
    assert broke.stderr == (f"netlab: warning: lab {LAB} was broken already (2 differences from its plan before "
                            "this break): what probe and trace show is not this fault's alone; "
                            f"`{netlab_command(f'status --lab {LAB}')}` lists them, "
                            f"`{netlab_command(f'up --lab {LAB}')}` repairs them all\n")
    monkeypatch.setattr("netlab.cli.breaks._faults_before", lambda name, reader="break", left_out=None: 2)
    as_json = run_cli("break", "pod-mtu-too-big", "--lab", LAB, "-o", "json")  # its "warnings", as up's JSON
    assert json.loads(as_json.stdout)["warnings"] == [broke.stderr.removeprefix("netlab: warning: ").rstrip("\n")]
    assert as_json.stderr == broke.stderr
    monkeypatch.setattr("netlab.cli.breaks._faults_before", lambda name, reader="break", left_out=None: 0)
    assert run_cli("break", "pod-mtu-too-big", "--lab", LAB).stderr == ""  # a clean lab: not a word more
    as_json = run_cli("break", "pod-mtu-too-big", "--lab", LAB, "-o", "json")
    assert (json.loads(as_json.stdout)["warnings"], as_json.stderr) == ([], "")


def test_inspect_says_how_to_list_every_conntrack_entry_of_this_lab():
    ct = {"total": 2, "by_protocol": {"tcp": 2}, "translated": 0, "by_state": {}, "entries": None}
    assert conntrack_lines(ct, "minikube", LAB)[-1] == (f"(every entry: netlab inspect --lab {LAB} minikube "
                                                        "--section conntrack)")


@pytest.mark.parametrize("task, line", [
    (None, "containers: pod fedora-1 container main exited (pid 4242); see `{logs}`"),
    ("T", "containers: pod fedora-1 container main is stopped (pid 4242, by SIGSTOP or SIGTSTP); `{up}` restarts it"),
])
def test_status_names_the_lab_in_a_containers_line(monkeypatch, tmp_path, state_root, task, line):
    path = tmp_path / "t.yaml"
    path.write_text(two_node_topology(LAB, pods_per_node=1))
    lab = resolve(load_topology(str(path)))
    pod, other = lab.pods[0], lab.pods[1]
    argv = {pod.name: lifecycle.container_argv(pod, pod.containers[0]), other.name: ["an", "old", "command"]}
    records = {"version": lifecycle.RECORD_VERSION,
               "pods": {p.name: {"containers": {"main": {"pid": 4242, "start": 1, "argv": argv[p.name]}}}
                        for p in lab.pods}}
    state = LabState(lab=LAB, extra={lifecycle.RECORD: records})
    monkeypatch.setattr(container_drift, "uts_hostnames", lambda paths: {p.name: p.hostname for p in lab.pods})
    monkeypatch.setattr(container_drift, "task_of", lambda crec, netns: task if netns == pod.netns else "S")
    monkeypatch.setattr(container_drift, "in_old_sandbox", lambda *a: False)
    monkeypatch.setattr(container_drift.exits, "exit_codes", lambda *a: {})
    monkeypatch.setattr(container_drift.node_uts, "drift", lambda lab: [])
    monkeypatch.setattr(container_drift.health, "drift", lambda lab, repair: [])
    # the logs line names the test's state folder (errors.netlab_command), set once the fixtures ran
    line = line.format(up=netlab_command(f"up --lab {LAB}"),
                       logs=netlab_command(f"logs --lab {LAB} {pod.name} -c main"))

    assert lifecycle.drift(lab, state) == [line, f"containers: pod {other.name} container main runs "
                                           f"another command than planned; `{netlab_command(f'up --lab {LAB}')}` restarts it"]


def test_the_png_hint_is_the_trace_as_typed_with_its_lab_and_quoted_names():
    """`trace -o png` to a terminal is refused with the command that redirects it: it said `netlab trace SRC DST
    -o png > path.png`, without the lab. Refused before anything is read: a real terminal, no root needed."""
    import os
    import pty
    import subprocess
    import sys

    main, tty = pty.openpty()
    try:
        proc = subprocess.run([sys.executable, "-m", "netlab", "trace", "--lab", "x1", "a b", "c", "-o", "png"],
                              stdout=tty, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True, timeout=60)
    finally:
        os.close(tty)
        os.close(main)
    assert proc.returncode == 2 and proc.stderr.endswith(
        "redirect it: netlab trace --lab x1 'a b' c -o png > path.png\n"), proc.stderr


def test_an_up_command_quotes_a_file_name_the_shell_would_split(monkeypatch):
    from netlab.realize.state import repair_up, up_command

    monkeypatch.delenv("NETLAB_STATE_DIR")  # the wording with no state folder chosen (test_command_lines_state_dir)

    assert up_command("/tmp/my lab.yaml") == "sudo netlab up -t '/tmp/my lab.yaml'"
    assert up_command("/tmp/a.yaml", reconfigure=True) == "sudo netlab up -t /tmp/a.yaml --reconfigure"
    assert repair_up(LabState(lab="x", topology={}, source="/tmp/a b.yaml"), changed=None) \
        == "sudo netlab up -t '/tmp/a b.yaml'"  # a file that gives what the lab runs (source_edit.source_changed)


def test_a_fault_before_a_break_is_drift_that_up_repairs(monkeypatch):
    """A Never pod's container that failed stays exited whatever `up` does (status's kept lines): it is no fault
    a quiz must wait for, which no repair would ever clear."""
    from netlab import api
    from netlab.api import internals
    from netlab.cli import breaks as cli_breaks

    monkeypatch.setattr(api.Lab, "attach", staticmethod(lambda name: name))
    monkeypatch.setattr(internals, "internal_status", lambda lab, topology=None, kernel=None, reader="status": (
        types.SimpleNamespace(drift=("missing: route", "containers: a Never pod's", "sysctl"),
                              kept=("containers: a Never pod's",))))
    assert cli_breaks._faults_before(LAB) == 2
