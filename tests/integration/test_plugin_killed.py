"""A pytest process of the plugin killed with SIGKILL (root): nothing of it runs to take its labs down.

An xdist worker killed: its controller takes down exactly that worker's labs (their states name its process),
the other worker's lab stays up under its test. A whole run killed: its lab stays up, and the next run names it
at its start and in its summary with the command that takes it down, as ``netlab list`` does; a live run's lab
and a lab made by hand are not named. tests/unit/test_plugin_owner.py has the owner records and the choices.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from helpers import lab_namespaces, netlab, state_path, unique_lab, wait_for

pytestmark = pytest.mark.root

ROOT = Path(__file__).resolve().parents[2]


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_XDIST_")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    return env


def _pytest(folder: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", *args, str(folder)],
                            cwd=folder, env=_env(), text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def _topology(base: str) -> dict:
    return {"name": base, "nodes": [{"name": "n1"}], "pods": [{"name": "a", "node": "n1"},
                                                             {"name": "b", "node": "n1"}]}


HOLD = '''
import os, time
import pytest

@pytest.mark.netlab({topology!r})
def test_{what}(netlab_lab):
    open("name-{what}", "w").write(f"{{netlab_lab.name}} {{os.getpid()}}")
    deadline = time.monotonic() + 240
    while not os.path.exists("release") and time.monotonic() < deadline:
        time.sleep(0.1)
    assert netlab_lab.trace("a", "b").delivered  # its lab is still whole
'''


def _written(folder: Path, what: str) -> tuple[str, int]:
    name, pid = (folder / f"name-{what}").read_text().split()
    return name, int(pid)


def test_a_crashed_xdist_workers_labs_are_taken_down_by_the_controller_and_no_other(tmp_path):
    """``pytest -n 2``, each worker in a test holding a lab; the worker of one killed with SIGKILL. Its lab
    stayed up, unmentioned (xdist replaced the worker; the run ended 1 failed). Now the controller takes it
    down at once and says so, in the run and in its summary; the other worker's lab stays up under its test,
    which passes."""
    base = unique_lab("qk")
    (tmp_path / "test_slow.py").write_text(HOLD.format(topology=_topology(base), what="slow"))
    (tmp_path / "test_hold.py").write_text(HOLD.format(topology=_topology(base), what="hold"))
    proc = _pytest(tmp_path, "-n", "2")
    names: list[str] = []
    try:
        assert wait_for(lambda: len(list(tmp_path.glob("name-*"))) == 2, timeout=120), "the labs never came up"
        (slow, worker), (held, _) = _written(tmp_path, "slow"), _written(tmp_path, "hold")
        names = [slow, held]
        assert len(lab_namespaces(slow)) == 4 and len(lab_namespaces(held)) == 4
        os.kill(worker, signal.SIGKILL)
        assert wait_for(lambda: not lab_namespaces(slow) and not os.path.exists(state_path(slow)), timeout=60), (
            "the crashed worker's lab stayed up", lab_namespaces(slow))
        assert len(lab_namespaces(held)) == 4  # the live worker's lab: untouched
        (tmp_path / "release").write_text("")
        out = proc.communicate(timeout=120)[0]
        assert proc.returncode == 1 and "1 failed, 1 passed" in out, out
        assert re.search(rf"^netlab: xdist worker gw\d crashed: lab {slow}: taken down$", out, re.M), out
        assert "netlab: labs of crashed xdist workers" in out, out
        assert not lab_namespaces(held)  # its test ended: down as usual
    finally:
        (tmp_path / "release").write_text("")
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for name in names:
            netlab("down", "--lab", name, check=False)


def test_a_killed_runs_lab_is_named_by_the_next_run_and_by_list_and_a_live_runs_is_not(tmp_path):
    """A pytest killed with SIGKILL (no xdist): its lab stays up (nothing of that process runs). The next run
    says so at its start and in its summary, with the command that takes it down, and does not take it down
    (the killed run's user may be reading it); ``netlab list`` says the same. A lab of a run still going, and
    a lab made by hand, are not named."""
    base = unique_lab("qk")
    killed_dir, live_dir, next_dir = (tmp_path / d for d in ("killed", "live", "next"))
    for folder in (killed_dir, live_dir, next_dir):
        folder.mkdir()
    (killed_dir / "test_killed.py").write_text(HOLD.format(topology=_topology(base), what="killed"))
    (live_dir / "test_live.py").write_text(HOLD.format(topology=_topology(base), what="live"))
    (next_dir / "test_next.py").write_text("def test_nothing():\n    pass\n")
    by_hand = unique_lab("qkh")
    (tmp_path / "hand.yaml").write_text(json.dumps(_topology(by_hand)))
    killed, live = _pytest(killed_dir), _pytest(live_dir)
    names: list[str] = [by_hand]
    try:
        netlab("up", "-t", str(tmp_path / "hand.yaml"))
        assert wait_for(lambda: (killed_dir / "name-killed").exists() and (live_dir / "name-live").exists(),
                        timeout=120), "the labs never came up"
        (lab, pid), (live_lab, _) = _written(killed_dir, "killed"), _written(live_dir, "live")
        names += [lab, live_lab]
        killed.send_signal(signal.SIGKILL)
        killed.communicate(timeout=60)
        time.sleep(1)
        assert len(lab_namespaces(lab)) == 4  # what SIGKILL leaves: nothing ran
        proc = _pytest(next_dir)
        out = proc.communicate(timeout=300)[0]
        assert proc.returncode == 0 and "1 passed" in out, out
        said = (f"netlab: lab {lab} is still up: the pytest run that brought it up, pytest (pid {pid}), has ended "
                f"without taking it down (killed, or the lab kept by --netlab-keep); take it down with: sudo ")
        assert said in out and f"netlab down --lab {lab}\n" in out, out
        assert out.index(said) < out.index("1 passed"), out  # at the run's start
        assert "netlab: labs left up by earlier runs" in out, out  # and again in its summary
        assert live_lab not in out and by_hand not in out, out
        assert len(lab_namespaces(lab)) == 4  # named, not taken down
        listed = netlab("list")
        assert f"netlab: lab {lab} was brought up by pytest (pid {pid}), which has ended" in listed.stderr, listed
        assert live_lab not in listed.stderr and by_hand not in listed.stderr, listed.stderr
        rows = {row["lab"]: row for row in json.loads(netlab("list", "-o", "json").stdout)}
        assert rows[lab]["owner"] == f"pytest (pid {pid})" and rows[lab]["owner_gone"] is True
        assert rows[live_lab]["owner_gone"] is False and rows[by_hand]["owner"] is None
        netlab("down", "--lab", lab)  # the command it gave
        assert not lab_namespaces(lab)
        (live_dir / "release").write_text("")
        out = live.communicate(timeout=120)[0]
        assert live.returncode == 0 and "1 passed" in out, out
    finally:
        (live_dir / "release").write_text("")
        for p in (killed, live):
            if p.poll() is None:
                p.kill()
                p.wait()
        for name in names:
            netlab("down", "--lab", name, check=False)
