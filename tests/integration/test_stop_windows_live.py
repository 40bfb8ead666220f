"""A stop signal at any point of a real `netlab up` (and while `netlab down` only reads): one line, its exit status.

A QA loop of `timeout -s INT 0.2..0.42 netlab up` met a Python traceback about once in 30-75 runs: the
signal's exception wrapped by Python in an import (a dataclass's ``__set_name__``: RuntimeError, exit 1) or by
pydantic as it built a validator (SchemaError), a second signal (``timeout`` sends its signal to the program,
then to its process group) as the first one's line was said, a Ctrl-C swallowed by an import's lock callback
(the lab came up, exit 0), a signal as `up` made or left the lab's folder (an empty folder left), and one once
the run was done (the fresh lab up, "interrupted by SIGTERM", as if taken back). And `down` held the signals
from its lock on, also while it only read the state: a read that blocked could only be stopped by SIGKILL.

Each case here is deterministic: the signal is sent by the process to itself at a chosen point (the Nth module
the program imports, a chosen function), through a small wrapper that runs the real program
(``netlab.launch.main``, as the console script does). Afterwards the kernel and the state directory show the lab
whole or gone, never half made.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest

from netlab.errors import down_command
from helpers import NETLAB, as_planned_here, lab_down_here, lab_namespaces, state_path, unique_lab, write_topology
from netlab import Lab

pytestmark = pytest.mark.root

# Runs the program as its console script does, with one stop signal sent at a chosen point: at the Nth module it
# imports that is not loaded yet (``import:N``; not the console script's own import of netlab.launch, which
# comes before the program's first line, as Python's start does); again, as a second signal, when the first
# one's line is said (``twice``); once up's run is done (``done``); as down reads the lab's state, which then
# blocks (``read``).
HOOK = """
import builtins, os, signal, sys, time
where, sig, fired = sys.argv[1], getattr(signal, "SIG" + sys.argv[2]), sys.argv[3]
sys.argv = ["netlab", *sys.argv[4:]]
def send(what):
    open(fired, "a").write(what + "\\n")
    os.kill(os.getpid(), sig)
if where.startswith("import:"):
    real, seen, nth = builtins.__import__, [], int(where.split(":")[1])
    def counting(name, globals=None, locals=None, fromlist=(), level=0):
        if level == 0 and name not in sys.modules and name not in seen and name not in ("netlab", "netlab.launch"):
            seen.append(name)
            if len(seen) == nth:
                send(name)
        return real(name, globals, locals, fromlist, level)
    builtins.__import__ = counting
if where == "twice":
    import click
    echo = click.echo
    def echo_twice(*args, **kwargs):
        if kwargs.get("err") and not os.path.exists(fired + ".2"):
            open(fired + ".2", "w").close()
            send("echo")
        return echo(*args, **kwargs)
    click.echo = echo_twice
    import netlab.api.topology
    load = netlab.api.topology.load
    def load_then_stopped(*args, **kwargs):
        send("load")
        return load(*args, **kwargs)
    netlab.api.topology.load = load_then_stopped
if where == "done":
    from netlab.lab import up
    run = up._Up.run
    def run_then_stopped(self, *args):
        result = run(self, *args)
        send("done")
        return result
    up._Up.run = run_then_stopped
if where == "read":
    from netlab.lab import teardown
    load_state = teardown.load_state
    def read_blocked(lab):
        send("read")
        time.sleep(30)  # a read that hangs (an NFS /run, a stuck mount): only the signal may end it
        return load_state(lab)
    teardown.load_state = read_blocked
from netlab.launch import main
sys.exit(main())
"""

# The modules `netlab up` of this lab imports that were not loaded yet number about 225 (imports, reading the
# topology, the doctor's checks): these points cover the whole of its loading, up to the kernel work.
POINTS = (1, 3, 8, 20, 45, 80, 120, 160, 190, 210, 220)
CODE = {"INT": 130, "TERM": 143}


def topology(lab: str) -> str:
    return (f"name: {lab}\nnetwork: {{mode: vxlan}}\nnodes: [{{name: n1}}, {{name: n2}}]\n"
            "pods:\n  - {name: web1, node: n1, labels: {app: web}}\n  - {name: cli, node: n2}\n"
            "services:\n  - {name: web, selector: {app: web}, ports: [{port: 80, targetPort: 8080}]}\n")


@pytest.fixture(scope="module")
def running(tmp_path_factory):
    """A lab that is up, for the tests whose stopped command must leave it as it was (they assert it so)."""
    lab = unique_lab("sw")
    path = write_topology(tmp_path_factory.mktemp("running"), topology(lab))
    try:
        Lab.up(path)
        yield lab, path
    finally:
        lab_down_here(lab)


def stopped(where: str, sig: str, tmp_path, *args: str) -> tuple[subprocess.CompletedProcess, list[str]]:
    fired = tmp_path / f"fired-{where}-{sig}"
    proc = subprocess.run([sys.executable, "-c", HOOK, where, sig, str(fired), *args], capture_output=True,
                          text=True, timeout=120)
    said = fired.read_text().split() if fired.exists() else []
    for extra in (fired, tmp_path / f"fired-{where}-{sig}.2"):
        extra.unlink(missing_ok=True)
    return proc, said


def one_line(proc: subprocess.CompletedProcess, sig: str) -> str:
    assert "Traceback" not in proc.stderr and "Exception ignored" not in proc.stderr, proc.stderr
    assert proc.returncode == CODE[sig], (proc.returncode, proc.stderr)
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("netlab: interrupted"), proc.stderr
    return lines[0]


@pytest.mark.parametrize("sig", ["INT", "TERM"])
def test_a_signal_at_any_point_of_a_fresh_ups_loading_is_one_line_and_leaves_nothing(sig, tmp_path):
    lab = unique_lab("sw")
    path = write_topology(tmp_path, topology(lab))
    try:
        for nth in POINTS:
            proc, fired = stopped(f"import:{nth}", sig, tmp_path, "up", "-t", path)
            assert fired, f"the program imported fewer than {nth} modules"
            line = one_line(proc, sig)
            assert "is up" not in line and proc.stdout == "", (fired, line, proc.stdout)
            assert not lab_namespaces(lab) and not os.path.lexists(state_path(lab)), (fired, line)
    finally:
        lab_down_here(lab)


@pytest.mark.parametrize("sig", ["INT", "TERM"])
def test_a_signal_at_any_point_of_a_converges_loading_leaves_the_running_lab_as_it_was(sig, tmp_path, running):
    lab, path = running
    with open(state_path(lab, "state.json"), "rb") as fh:
        before = fh.read()
    for nth in POINTS:
        proc, fired = stopped(f"import:{nth}", sig, tmp_path, "up", "-t", path)
        assert fired
        one_line(proc, sig)
        with open(state_path(lab, "state.json"), "rb") as fh:
            assert fh.read() == before, fired
    assert as_planned_here(lab)


@pytest.mark.parametrize("sig", ["INT", "TERM"])
def test_a_second_signal_as_the_first_ones_line_is_said_is_ignored(sig, tmp_path):
    """`timeout` sends its signal twice (to the program, then to its process group): the second came as the
    first one's line was written, and its KeyboardInterrupt cut it short with a traceback."""
    lab = unique_lab("sw")
    path = write_topology(tmp_path, topology(lab))
    try:
        proc, fired = stopped("twice", sig, tmp_path, "up", "-t", path)
        assert fired == ["load", "echo"], fired
        said = "netlab: interrupted" if sig == "INT" else "netlab: interrupted by SIGTERM"
        assert one_line(proc, sig) == (f"{said} while it read the topology, before it changed anything; the lab of "
                                       f"{path} is as it was (what the edit would change was not known yet)")
        assert not lab_namespaces(lab) and not os.path.lexists(state_path(lab))
    finally:
        lab_down_here(lab)


def test_a_signal_once_the_run_is_done_says_the_lab_is_up(tmp_path):
    """The fresh lab was made whole; the signal came as up let go of it: said, not taken for a rollback."""
    lab = unique_lab("sw")
    path = write_topology(tmp_path, topology(lab))
    try:
        proc, fired = stopped("done", "TERM", tmp_path, "up", "-t", path)
        assert fired == ["done"]
        assert one_line(proc, "TERM") == (f"netlab: interrupted by SIGTERM; lab {lab} is up "
                                          f"(`{down_command(lab)}` takes it down)")
        assert as_planned_here(lab)
    finally:
        lab_down_here(lab)


def test_down_stops_at_once_on_sigterm_while_it_only_reads_the_state(tmp_path, running):
    """Before down changes anything a stop signal ends it at once, the lab as it was; it waited for the read
    (here 30 s), then took the lab down (the signal held from its lock on)."""
    lab, _ = running
    namespaces = lab_namespaces(lab)
    proc, fired = stopped("read", "TERM", tmp_path, "down", "--lab", lab)
    assert fired == ["read"]
    assert one_line(proc, "TERM") == (f"netlab: interrupted by SIGTERM; lab {lab} is still up "
                                      f"(`{down_command(lab)}` takes it down)")
    assert lab_namespaces(lab) == namespaces
    assert as_planned_here(lab)



@pytest.mark.parametrize("point", ["netns-checked", "repair-read"])
def test_a_signal_before_a_converge_changed_anything_says_the_edit_was_not_applied(point, running):
    """QA lf61 3: SIGTERM to an `up` of an edited file before its run changed anything said "lab L is up" (before
    its write-ahead) or "rolled back" (after it, nothing yet done), as after a run: as if the edit might be in
    place. It says now that nothing was applied, and what the edit was. (An edit that adds a pod makes its
    namespace before the repair's read: "rolled back" is then what happened.)"""
    lab, path = running
    with open(path, encoding="utf-8") as fh:
        text = fh.read()
    with open(state_path(lab, "state.json"), encoding="utf-8") as fh:
        before = json.load(fh)["topology"]
    try:
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(text.replace("labels: {app: web}", "labels: {app: web, tier: a}", 1))  # no namespace made
        for edit, said in ((True, "the edit not applied: pod web1's labels changed"), (False, "nothing repaired")):
            if not edit:
                with open(path, "w", encoding="utf-8") as fh:
                    fh.write(text)
            proc = subprocess.Popen([*NETLAB, "up", "-t", path], stdin=subprocess.PIPE, stderr=subprocess.PIPE,
                                    stdout=subprocess.PIPE, text=True,
                                    env={**os.environ, "NETLAB_FAULT_POINT": point, "NETLAB_FAULT_MODE": "pause"})
            assert proc.stderr is not None and proc.stderr.readline() == f"netlab: paused at {point} (test hook)\n"
            proc.send_signal(signal.SIGTERM)
            out, err = proc.communicate(timeout=60)
            assert proc.returncode == 143 and out == "", (proc.returncode, out, err)
            assert err == (f"netlab: interrupted by SIGTERM before it changed anything; lab {lab} is as it was "
                           f"({said})\n"), err
            with open(state_path(lab, "state.json"), encoding="utf-8") as fh:
                assert json.load(fh)["topology"] == before
            assert as_planned_here(lab)
    finally:
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(text)
