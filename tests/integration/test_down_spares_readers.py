"""`netlab down` stops every process with a thread in the lab's namespaces, but not another netlab command's
thread that only passes through one (kernel/netns.entered: `status`'s readers, its own main thread reading).

A `status` of a lab that a `down` was taking away was SIGTERMed by that down (about 1 in 60 runs in QA):
`netlab: interrupted by SIGTERM`, exit 143, as a cancelled CI job. Here a real process sits inside `entered()` in
the lab's pod namespace, another has joined it for good (as a user's shell there), and a real `netlab down` runs.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from helpers import ip_json, lab_namespaces, netlab

pytestmark = pytest.mark.root

VISIT = ("import sys\nfrom netlab.kernel import netns as nsmod\n"
         "with nsmod.entered(sys.argv[1]):\n    print('in', flush=True)\n    sys.stdin.read()\n"
         "print('left', flush=True)\n")
JOIN = ("import sys\nfrom netlab.kernel import netns as nsmod\n"
        "nsmod.join(sys.argv[1])\nprint('in', flush=True)\nsys.stdin.read()\n")
# Joined to one namespace for good, passing through another (the probe's agent opening a socket in a pod): the lab's.
JOIN_VISIT = ("import sys\nfrom netlab.kernel import netns as nsmod\nnsmod.join(sys.argv[1])\n"
              "with nsmod.entered(sys.argv[1].rsplit('-', 1)[0] + '-n1'):\n    print('in', flush=True)\n"
              "    sys.stdin.read()\n")


def started(code: str, netns: str) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", code, netns], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True, env={**os.environ, "PYTHONPATH": os.getcwd()})
    assert proc.stdout is not None and proc.stdout.readline() == "in\n"  # in the namespace now
    return proc


def test_down_stops_the_labs_processes_but_not_a_netlab_reader_passing_through(labs):
    lab = labs.name("cc")
    labs.up(f"name: {lab}\nnodes: [{{name: n1}}]\npods: [{{name: a, node: n1}}]\n")
    pod = f"{lab}-a"
    assert pod in lab_namespaces(lab)
    visitor = started(VISIT, pod)
    joined = started(JOIN, pod)
    joined_visiting = started(JOIN_VISIT, pod)
    try:
        netlab("down", "--lab", lab)
        assert joined.wait(timeout=30) in (-15, -9)  # the lab's process: stopped by down
        assert joined_visiting.wait(timeout=30) in (-15, -9)
        assert visitor.poll() is None, visitor.returncode  # the reader: left alone, still inside
        assert not [ns["name"] for ns in ip_json("netns", "list") if ns["name"].startswith(lab + "-")]
        out, _ = visitor.communicate("", timeout=30)  # let go: it comes back to its own namespace and ends
        assert (visitor.returncode, out) == (0, "left\n")
    finally:
        for proc in (visitor, joined, joined_visiting):
            if proc.poll() is None:
                proc.kill()
                proc.wait()
