"""A unit run leaves nothing in the system's temporary directory but hypothesis' own folder there
(tests/unit/conftest.py), with xdist's workers too, whatever already holds that folder's name.

Hypothesis makes its home again with default modes (0755 under umask 022) when it is removed while a
run goes on (a ``rm -rf /tmp/netlab-unit-hypothesis-*`` of leaked folders during a run did): the conftest
then uses a fresh folder in each process of every later run. Its atexit handler removed it, which a worker's
exit does not always reach: Python waits for the threads a test left running first, and xdist kills (SIGKILL) a
worker that has not ended 10 s after the session's end: a few folders left by every such run."""

from __future__ import annotations

import os
import subprocess
import sys

CHECKOUT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


# A test that leaves a thread running (a watcher not stopped): its worker's Python waits for it at exit.
LINGER = """
import threading, time

def pytest_sessionfinish(session):
    if hasattr(session.config, "workerinput"):
        threading.Thread(target=time.sleep, args=(20,)).start()
"""


def _unit_run(tmp_path, tmpdir: str) -> subprocess.CompletedProcess[str]:
    """A small unit run with two xdist workers whose exits are cut short, its temporary files under ``tmpdir``,
    pytest's own elsewhere."""
    (tmp_path / "linger.py").write_text(LINGER)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "HYPOTHESIS_"))}
    env["TMPDIR"] = tmpdir
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(tmp_path), env.get("PYTHONPATH")]))
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "linger", "-n", "2",
                           "--basetemp", str(tmp_path / "basetemp"), "tests/unit/test_jsonout.py"],
                          cwd=CHECKOUT, env=env, capture_output=True, text=True, timeout=300)


def _planted_symlink(path: str) -> None:
    target = path + "-target"
    os.mkdir(target, 0o700)
    (open(os.path.join(target, "keep"), "w")).close()
    os.symlink(target, path)


def test_a_unit_run_with_xdist_leaves_no_folder_in_tmp(tmp_path):
    """A symlink planted at the shared folder's name (as a 0755 folder, or anyone else's, it is refused: each process
    uses a fresh folder, the same path as for hypothesis' 0755 one); a child pytest run, each worker's exit cut
    short. One case: each costs a child run of three processes and xdist's 10-s wait."""
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    home = os.path.join(tmpdir, f"netlab-unit-hypothesis-{os.getuid()}")
    _planted_symlink(home)
    before = sorted(os.listdir(tmpdir))
    shape = {name: (os.lstat(os.path.join(tmpdir, name)).st_mode, sorted(os.listdir(os.path.join(tmpdir, name))))
             for name in before}
    run = _unit_run(tmp_path, str(tmpdir))
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    assert sorted(os.listdir(tmpdir)) == before  # what was there is still there, nothing more
    assert {name: (os.lstat(os.path.join(tmpdir, name)).st_mode, sorted(os.listdir(os.path.join(tmpdir, name))))
            for name in before} == shape  # untouched: not chmodded, nothing written in it nor through the link
