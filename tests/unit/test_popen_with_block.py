"""``with lab.popen(pod, server) as srv:`` stops the server when the block ends (netlab/api/pod_process.py).

popen's docstring offered the Popen as a context manager to own the process, but a plain Popen's ``__exit__``
only waits: for the long-running server popen is for, the block never ended (QA qt #2). The block's end now
stops it (SIGTERM; SIGKILL for one that ignores it) and reaps it. Each case runs in a child Python bounded by
the harness's timeout: before the fix the child hung in ``Popen.__exit__`` and the run's timeout failed it.
The process starts where the test runs (the pod's namespaces stood in for, as in test_lab_pod_actions.py).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = '''
import contextlib, signal, subprocess, sys
from netlab import Lab
from netlab.api import exec as exec_mod, pod_process

class Here:
    @contextlib.contextmanager
    def opened(self):
        yield None  # Popen's preexec_fn=None: no namespace to enter

exec_mod.exec_target = lambda state, model, name: Here()
Lab.state = lambda self: None
Lab.model = None
pod_process.STOP_GRACE = 1.0
server = "import signal, time; signal.signal(signal.SIGTERM, signal.%s); print('up', flush=True); time.sleep(600)"
with Lab("qgnone").popen("a", [sys.executable, "-c", server % sys.argv[1]], stdout=subprocess.PIPE, text=True) as srv:
    assert srv.stdout.readline() == "up\\n"
print(srv.returncode, srv.stdout.closed)
'''


@pytest.mark.parametrize("on_sigterm,status", [("SIG_DFL", -15), ("SIG_IGN", -9)])
def test_leaving_a_with_block_of_popen_stops_and_reaps_the_server(on_sigterm, status):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    child = subprocess.Popen([sys.executable, "-c", SCRIPT, on_sigterm], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env=env, start_new_session=True)
    try:
        out, err = child.communicate(timeout=60)  # the harness's bound: before the fix, the block never ended
    finally:
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGKILL)  # the child and the server it started (its own session)
            child.wait()
    assert (child.returncode, err) == (0, "")
    assert out.split() == [str(status), "True"]  # stopped by SIGTERM, or SIGKILL after the grace; reaped


def test_a_process_that_ended_before_the_block_keeps_its_own_status():
    from netlab.api.pod_process import PodProcess

    with PodProcess([sys.executable, "-c", "raise SystemExit(3)"]) as proc:
        proc.wait(timeout=30)
    assert proc.returncode == 3
