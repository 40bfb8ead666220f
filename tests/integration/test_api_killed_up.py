"""A lab whose `up` ran in a Python program through netlab's API (a pytest worker's fixture) that was killed with
SIGKILL halfway (root).

`netlab list` said "the `netlab up` that was making it (pid N) ended", N being the program (a pytest worker), no
`netlab up` at all; the next pytest run said the plugin's lab "is still up ... (killed, or the lab kept by
--netlab-keep)", never that it is half made. Both now name the program (its command line) and say the lab is half
made, and that `netlab down --lab L` takes it away.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import lab_down, lab_namespaces, netlab, state_path, unique_lab
from killed_runs import lock_let_go
from netlab.errors import down_command, netlab_command

pytestmark = pytest.mark.root

ROOT = Path(__file__).resolve().parents[2]

# The program: the plugin's way (its owner record claimed, Lab.up_loaded), killed at up's 30th change
PROGRAM = """import sys
from netlab import Lab
from netlab.realize import owner
with owner.claimed():
    Lab.up({topology!r})
"""


def test_a_killed_api_up_s_lab_is_said_half_made_by_its_program(tmp_path):
    lab = unique_lab("ll")
    topology = {"name": lab, "nodes": [{"name": "n1"}], "pods": [{"name": "a", "node": "n1"},
                                                                  {"name": "b", "node": "n1"}]}
    child = subprocess.Popen([sys.executable, "-c", PROGRAM.format(topology=topology)], cwd=ROOT,
                             env={**os.environ, "NETLAB_FAULT_AT": "30", "NETLAB_FAULT_MODE": "kill"})
    try:
        assert child.wait(timeout=300) == -9  # SIGKILL: nothing of it ran to finish or roll back
        lock_let_go(lab)
        assert len(lab_namespaces(lab)) == 4  # n1, underlay, a, b: made, phase creating
        with open(state_path(lab, "state.json")) as fh:
            assert json.load(fh)["phase"] == "creating"

        listed = netlab("list")
        (row,) = [r for r in json.loads(netlab("list", "-o", "json").stdout) if r["lab"] == lab]
        line = row["error"]
        # (other labs of this machine's state folders have their lines too)
        assert [s for s in listed.stderr.splitlines() if f"lab {lab}" in s] == [f"netlab: {line}"], listed
        assert "`netlab up`" not in line, line  # no `netlab up` ran: a Python program did, through the API
        # its command line on one line, cut at 100 characters (where depends on the interpreter's name: python3
        # in CI, python in a helper's venv)
        command = " ".join(f"{os.path.basename(sys.executable)} -c {PROGRAM.format(topology=topology)}".split())
        assert len(command) > 100
        assert line == (f"lab {lab}: the up that was making it through netlab's API, in pid {child.pid} "
                        f"({command[:97]}...), "
                        f"ended before it finished (killed): the lab is half made; "
                        f"`{netlab_command(f'up --lab {lab}')}` finishes it, or `{down_command(lab)}` "
                        f"takes away what it made"), line
        assert row["owner"] == f"pytest (pid {child.pid})" and row["owner_gone"] is True, row

        # what the next pytest run says of it (netlab.pytest_owners, at its start and in its summary)
        from netlab import pytest_owners

        said = [pytest_owners.left_up_line(name, record) for name, record in pytest_owners.left_up() if name == lab]
        assert said == [f"lab {lab} is half made: the pytest run that was bringing it up, pytest (pid {child.pid}), "
                        f"ended before its up finished (killed); take it away with: "
                        f"{down_command(lab)}"], said

        netlab("down", "--lab", lab)  # the command both name
        assert lab_namespaces(lab) == []
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        lab_down(lab)
