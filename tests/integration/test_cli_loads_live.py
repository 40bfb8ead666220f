"""What the CLI loads for a lab whose pods no CNI plugin attaches (network.cni: builtin): its `up` (fresh, and with
nothing to change) and its `status` run no plugin, so they load none of netlab.cni's runtime (the feature's
lifecycle, the plugin calls and their log, the chains' ADD/DEL/CHECK, the conflist's field scan); `status` of a lab
as planned loads nothing of netlab.cni at all."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from helpers import write_topology

pytestmark = pytest.mark.root

ROOT = Path(__file__).resolve().parents[2]
HEAVY = {"netlab.cni.lifecycle", "netlab.cni.invoke", "netlab.cni.runtime", "netlab.cni.attach",
         "netlab.cni.changed", "netlab.cni.verify", "netlab.cni.fields"}
# The command as `python -m netlab` runs it, then (atexit: the program runs it before it exits) its netlab.cni modules
LOADED = """import atexit, runpy, sys
atexit.register(lambda: print("LOADED", *sorted(m for m in sys.modules if m.startswith("netlab.cni")), file=sys.stderr))
sys.argv = ["netlab", *sys.argv[1:]]
runpy.run_module("netlab", run_name="__main__", alter_sys=True)
"""


def cni_modules(*args: str) -> set[str]:
    proc = subprocess.run([sys.executable, "-c", LOADED, *args], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (line,) = [line for line in proc.stderr.splitlines() if line.startswith("LOADED")]
    return set(line.split()[1:])


def test_up_and_status_of_a_builtin_lab_load_no_cni_runtime(labs, tmp_path):
    lab = labs.name("ld")
    path = write_topology(tmp_path, f"name: {lab}\nnodes:\n  - {{name: n1}}\npods:\n  - {{name: a, node: n1}}\n"
                                    "  - {name: b, node: n1}\n")
    assert cni_modules("up", "-t", path) & HEAVY == set()  # a new lab
    assert cni_modules("up", "-t", path) & HEAVY == set()  # nothing to change
    # all as planned: no line names a repair, so not even the words of one (cni.edited, with the CNI config's plan)
    assert cni_modules("status", "--lab", lab) == set()
