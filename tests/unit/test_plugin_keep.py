"""``--netlab-keep``'s summary says what became of each lab (netlab/pytest_plugin.py, netlab/pytest_artifacts.py).

A lab whose take-down failed at its test's teardown (or at its setup, a container that could not start) was
listed as "stays up" with the kept labs, though the plugin keeps only a failed test's labs that it did not try
to take down: the end of the session takes such a lab down again. The summary now says it was not kept, and,
from the state folder once the session's end is over, whether that second take-down did it; a lab that went
down at its setup is not said to stay up at all. A fake Lab (no kernel): this is about the plugin's words.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

CONFTEST = '''
import os, shutil, types
from netlab import doctor, pytest_artifacts
from netlab.api import Lab
from netlab.realize import state_dir

FAILS = int(os.environ["FAKE_DOWN_FAILS"])  # how many take-downs fail before one works
downs = []

def up_loaded(cls, loaded, wait=60.0):
    lab = cls(loaded.lab.name)
    os.makedirs(os.path.join(state_dir.STATE_ROOT, lab.name))
    lab.last_up = types.SimpleNamespace(failed=tuple(os.environ.get("FAKE_FAILED", "").split(";") if
                                                   os.environ.get("FAKE_FAILED") else ()))
    return lab

def down(self, **kw):
    downs.append(self.name)
    if len(downs) <= FAILS:
        raise RuntimeError("the kernel said no")
    shutil.rmtree(os.path.join(state_dir.STATE_ROOT, self.name))
    self._down = True

Lab.up_loaded = classmethod(up_loaded)
Lab.down = down
doctor.require_for = lambda lab: None
pytest_artifacts.snapshot = lambda lab, *a: {}
'''


def run(tmp_path: Path, test: str, fails: int, failed: str = "") -> tuple[str, list[str]]:
    """pytest --netlab-keep on ``test`` with this checkout's plugin and the fake Lab; its output, and the labs
    left in the state folder."""
    state = tmp_path / "state"
    state.mkdir()
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "pytest.ini").write_text("[pytest]\n")
    (run_dir / "conftest.py").write_text(CONFTEST)
    (run_dir / "test_case.py").write_text("import pytest\n\n\n@pytest.mark.netlab(None, name='bk')\n" + test)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_XDIST_")}
    # The plugin named, no autoload: pytest's autoload of every installed plugin (hypothesis's imports all of
    # hypothesis) costs ~0.8 s of CPU a run. tests/unit/test_plugin_topology.py loads the plugin by its entry point.
    env.update(PYTHONPATH=os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]), NETLAB_STATE_DIR=str(state),
               FAKE_DOWN_FAILS=str(fails), FAKE_FAILED=failed, PYTEST_DISABLE_PLUGIN_AUTOLOAD="1")
    proc = subprocess.run([sys.executable, "-m", "pytest", "-p", "netlab.pytest_plugin", "-p", "no:cacheprovider",
                           "-q", "-rA", "--netlab-keep",
                           "--basetemp", str(tmp_path / "base"), "test_case.py"],
                          cwd=run_dir, capture_output=True, text=True, timeout=120, env=env)
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc.stdout, sorted(os.listdir(state))


PASSES = "def test_passes(netlab_lab):\n    pass\n"


@pytest.mark.parametrize("fails", [1, 2])
def test_a_lab_whose_take_down_failed_is_not_said_to_stay_up(tmp_path, fails):
    out, left = run(tmp_path, PASSES, fails)
    assert "1 passed, 1 error" in out, out
    assert "stays up" not in out and "labs kept up" not in out, out
    assert "netlab: labs not kept: their take-down failed (--netlab-keep)" in out, out
    (line,) = [line for line in out.splitlines() if line.startswith("lab bk")]
    assert line.split(":", 1)[1].startswith(" not kept up: its take-down failed (its test's teardown says why)"), line
    name = line.split()[1].rstrip(":")
    if fails == 1:  # the end of the run tried again, and its take-down worked
        assert left == [] and line.endswith("; the end of the run took it down"), (left, line)
    else:
        assert left == [name], left
        assert line.endswith(f", and the end of the run could not take it down either; it is still up: sudo "
                             f"NETLAB_STATE_DIR={tmp_path / 'state'} netlab status --lab {name}; take it down "
                             f"with: sudo NETLAB_STATE_DIR={tmp_path / 'state'} netlab down --lab {name}"), line


def test_a_lab_taken_down_at_its_setup_is_not_said_to_stay_up(tmp_path):
    """A container that could not start: the plugin takes the lab down as it fails the setup, --netlab-keep
    or not (the README); it was said to stay up."""
    out, left = run(tmp_path, PASSES, 0, failed="pod a container bad: could not start: /nope: not found")
    assert "1 error" in out and "could not start" in out, out
    assert "stays up" not in out and "labs kept up" not in out and "not kept" not in out, out
    assert left == []


def test_a_failed_tests_lab_is_kept_and_said_to_stay_up(tmp_path):
    """What --netlab-keep is for: the failed test's lab, never taken down, is said to stay up."""
    out, left = run(tmp_path, "def test_fails(netlab_lab):\n    assert False\n", 0)
    assert "1 failed" in out and "netlab: labs kept up (--netlab-keep)" in out, out
    (name,) = left
    assert f"lab {name} stays up: " in out and "not kept" not in out, out
