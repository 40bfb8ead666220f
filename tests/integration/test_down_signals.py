"""Real signals sent while a lab is taken down: `netlab down`, and the end of a library script's ``with`` block.

A second Ctrl-C, or the SIGTERM a CI runner sends after its SIGINT, landed in the middle of the take-down and
stopped it there: some namespaces unmounted, others not, the lab's state (/run/netlab/<lab>) naming them left
behind. Now the take-down finishes once begun, then the signal takes effect: the CLI exits 130 (SIGINT came
first) with one line saying the lab is down; the script exits 143 by the README quickstart's SystemExit.
Each test holds the take-down at its test hook ``down-stopped`` (NETLAB_FAULT_MODE=pause: the lab's containers
stopped, its namespaces not yet deleted, the signals already held), sends its signals there, lets it go on, and
then reads the kernel: no namespace, state, /etc/netns file or process of the lab is left. (They once sent them
when /proc/self/mountinfo showed the first namespace unmounted: on a loaded machine the down had finished and
exited by the time the test read that, and the signals reached nobody: exit 0, not 130.)
"""

from __future__ import annotations

import ctypes
import glob
import os
import signal
import subprocess
import sys
import uuid

import pytest

from helpers import (NETLAB, lab_namespaces, netlab, quickstart_signal_lines, state_path, unique_lab, wait_for,
                     write_topology)
from test_signals_live import processes_with, topology

pytestmark = pytest.mark.root

PODS = 30


def mounted(lab: str) -> int:
    """How many of the lab's network namespaces are mounted under /run/netns, as the kernel's mount table says
    (an unmount is what deletes a namespace's name; its file goes after)."""
    with open("/proc/self/mountinfo") as fh:
        return sum(1 for line in fh if f" /run/netns/{lab}-" in line and " - nsfs " in line)


LIBC = ctypes.CDLL(None, use_errno=True)
PAUSED = "netlab: paused at down-stopped (test hook)\n"
HELD = {"NETLAB_FAULT_POINT": "down-stopped", "NETLAB_FAULT_MODE": "pause"}


def signal_while_held(proc: subprocess.Popen, lab: str, signals: tuple[int, ...]) -> None:
    """Send ``signals`` to ``proc``, one after the other, while its take-down is held at ``down-stopped`` (it said
    so on its standard error, a pipe), then let it go on (a line on its standard input).

    Each to the main thread (tgkill), where Python runs its handlers: the kernel delivers them there in order.
    Sent to the process, a signal the kernel gave a thread that was not running could be handled after the next
    one, which the running main thread took at once: the program rightly saw SIGTERM first (exit 143, not
    SIGINT's 130)."""
    assert proc.stderr is not None and proc.stdin is not None
    line = proc.stderr.readline()
    assert line == PAUSED, line + proc.stderr.read()
    assert mounted(lab) > PODS  # not one namespace deleted yet
    for sig in signals:
        assert LIBC.tgkill(proc.pid, proc.pid, sig) == 0, f"signal {sig}: {os.strerror(ctypes.get_errno())}"
    proc.stdin.write("\n")
    proc.stdin.flush()  # communicate() closes it


def assert_all_gone(lab: str, made: list[str], tag: str) -> None:
    assert lab_namespaces(lab) == [] and mounted(lab) == 0
    assert not os.path.exists(state_path(lab))
    assert glob.glob(f"/etc/netns/{lab}-*") == [] and not any(os.path.exists(f"/etc/netns/{ns}") for ns in made)
    assert wait_for(lambda: processes_with(tag) == [] and processes_with(f"/{lab}/echo.sock") == [], 5)


def test_sigint_then_sigterm_during_netlab_down_wait_for_the_lab_to_be_down(tmp_path):
    lab, tag = unique_lab("qv"), f"{86400 + uuid.uuid4().int % 1000}"
    netlab("up", "-t", write_topology(tmp_path, topology(lab, tag, pods=PODS)))
    made = lab_namespaces(lab)
    try:
        assert len(made) == PODS + 3 and processes_with(tag)
        proc = subprocess.Popen(NETLAB + ["down", "--lab", lab], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env={**os.environ, **HELD})
        try:
            signal_while_held(proc, lab, (signal.SIGINT, signal.SIGTERM))
            out, err = proc.communicate(timeout=120)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        assert_all_gone(lab, made, tag)
        assert proc.returncode == 130, (out, err)
        assert err == f"netlab: interrupted by SIGINT; lab {lab} is down\n" and out == "", (out, err)
    finally:
        netlab("down", "--lab", lab, check=False)


def test_sigterm_twice_as_a_with_block_ends_waits_for_the_lab_to_be_down(tmp_path):
    """The README quickstart's line turns SIGTERM into SystemExit: the first ends the block, which takes the lab
    down; two more come while it does (a runner's repeat, a process group's). Exit 143, the lab down."""
    line = quickstart_signal_lines().rstrip("\n")
    lab, tag = unique_lab("qv"), f"{86400 + uuid.uuid4().int % 1000}"
    pods = [{"name": f"p{i}", "node": f"n{i % 2 + 1}",
             "containers": [{"name": "web"}, {"name": "main", "command": ["sleep", tag]}]} for i in range(PODS)]
    topo = {"name": lab, "network": {"mode": "host-gw"}, "nodes": [{"name": "n1"}, {"name": "n2"}], "pods": pods}
    script = tmp_path / "mine.py"
    script.write_text(f"import signal, sys, time\nfrom netlab import Lab\n{line}\n"
                      f"with Lab.up({topo!r}) as lab:\n"
                      "    open(sys.argv[1], 'w').write('in the block')\n"
                      "    time.sleep(300)\n")
    inside = tmp_path / "inside"
    proc = subprocess.Popen([sys.executable, str(script), str(inside)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, **HELD})
    made: list[str] = []
    try:
        assert wait_for(inside.exists, timeout=120), "the block never began"
        made = lab_namespaces(lab)
        assert len(made) == PODS + 3 and processes_with(tag)
        proc.send_signal(signal.SIGTERM)  # the block ends: the lab goes down
        signal_while_held(proc, lab, (signal.SIGTERM, signal.SIGTERM))
        out, err = proc.communicate(timeout=120)
        assert_all_gone(lab, made, tag)
        assert proc.returncode == 143 and out == err == "", (out, err)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        netlab("down", "--lab", lab, check=False)
