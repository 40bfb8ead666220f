"""Ctrl-C or SIGTERM while ``Lab.up`` changes the kernel, in a Python program of one's own (root).

up rolls its change back, then raised its ``Interrupted``, a subclass of KeyboardInterrupt: uncaught, Python printed
its traceback and exited 1 (CPython ends a program by SIGINT, 130, for a plain KeyboardInterrupt alone), and the
README quickstart's own SIGTERM handler (SystemExit, 143) never ran: `timeout ... python quickstart.py` gave 1 or
143 as the signal landed before or during the change. Now the rolled-back signal ends the program as the caller's
disposition of it says: uncaught, by the signal itself (130, 143), one line and no traceback; the caller's handler
(the quickstart's: 143) runs; a caller that catches the exception (``except KeyboardInterrupt``, ``except
netlab.api.Interrupted``) still does.

The program stops at a known point of the change (``NETLAB_FAULT_POINT=containers-started``, pause: the pod's
container runs, its pid not yet recorded), is signalled there, and must leave nothing of its lab.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import lab_down, lab_namespaces, quickstart_signal_lines, state_path, unique_lab

pytestmark = pytest.mark.root

ROOT = Path(__file__).resolve().parents[2]

# SIGINT as in a terminal, also where the test runs with it ignored (a background job passes that on)
HEAD = "import signal, sys\nsignal.signal(signal.SIGINT, signal.default_int_handler)\nfrom netlab import Lab\n"
PLAIN = "with Lab.up({topology!r}):\n    print('in the block')\n"
CAUGHT = ("import netlab.api\ntry:\n    Lab.up({topology!r})\nexcept {caught} as exc:\n"
          "    print('caught', type(exc).__name__, exc)\n    sys.exit(7)\n")


def _signalled(program: str, lab: str, sig: int) -> tuple[int, str, str]:
    """Run ``program`` (its lab ``lab``), signal it with ``sig`` once its up paused inside the change: its exit
    status (negative: the signal ended it), stdout and stderr. Nothing of the lab may be left (rolled back)."""
    topology = {"name": lab, "nodes": [{"name": "n1"}],
                "pods": [{"name": "a", "node": "n1"},
                         {"name": "b", "node": "n1", "containers": [{"name": "c", "command": ["sleep", "600"]}]}]}
    env = {**os.environ, "PYTHONPATH": str(ROOT), "NETLAB_FAULT_POINT": "containers-started",
           "NETLAB_FAULT_MODE": "pause"}
    proc = subprocess.Popen([sys.executable, "-c", program.format(topology=topology)], env=env, cwd=ROOT,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stderr is not None
        first = proc.stderr.readline()  # the pause's line: the container runs, the change is half done
        assert first == "netlab: paused at containers-started (test hook)\n", first + proc.stderr.read()
        assert len(lab_namespaces(lab)) == 4  # n1, the underlay, a, b
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=120)  # (stdin closed: a pause the signal did not end goes on)
        assert lab_namespaces(lab) == [] and not os.path.exists(state_path(lab)), (out, err)  # rolled back
        return proc.returncode, out, first + err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        lab_down(lab)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_an_uncaught_signal_during_up_ends_the_program_by_that_signal_once_rolled_back(sig):
    """No handler of the program's: Ctrl-C ends it as an uncaught KeyboardInterrupt does, SIGTERM as its default
    does: by the signal (the shell's 130, 143), with up's one line saying it rolled back, no traceback."""
    lab = unique_lab("sbu")
    status, out, err = _signalled(HEAD + PLAIN, lab, sig)
    name = signal.Signals(sig).name
    assert status == -sig, (status, out, err)
    assert err.splitlines()[1:] == [f"netlab: interrupted by {name}; rolled back"], err
    assert "in the block" not in out


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_the_quickstarts_sigterm_handler_ends_the_program_with_143_once_rolled_back(sig):
    """The README quickstart's line (SIGTERM is SystemExit(143), SIGHUP 129: a closed terminal's) runs once up
    rolled back: 128 + the signal, no traceback."""
    lab = unique_lab("sbq")
    status, out, err = _signalled(HEAD + quickstart_signal_lines() + PLAIN, lab, sig)
    assert status == 128 + sig, (status, out, err)
    assert "Traceback" not in err and err.splitlines()[1:] == [], err


@pytest.mark.parametrize(("sig", "caught"), [(signal.SIGINT, "KeyboardInterrupt"),
                                              (signal.SIGTERM, "netlab.api.Interrupted")])
def test_a_caller_that_catches_the_signal_s_exception_still_does(sig, caught):
    """``except KeyboardInterrupt`` (Ctrl-C's) and ``except netlab.api.Interrupted`` still catch it, and the
    program goes on as it says (exit 7 here)."""
    lab = unique_lab("sbc")
    status, out, err = _signalled(HEAD + CAUGHT.replace("{caught}", caught), lab, sig)
    assert status == 7, (status, out, err)
    assert out == f"caught Interrupted interrupted by {signal.Signals(sig).name}; rolled back\n", (out, err)
    assert "Traceback" not in err, err
