"""A healthy lab up with a state folder of its own (NETLAB_STATE_DIR, as the pytest plugin and tests use), seen
from the default folder (root).

`netlab list` called it "lost" with the advice to run `down --force`, and `down --force` deleted the running lab:
another netlab's. Now its namespaces' tag names its state folder: `list` shows it `elsewhere`, naming the folder,
`down --force` refuses in one line with the command to use, and every namespace stays; the right `down` takes it.
Only this test's lab is touched: the default folder's `down --force` names it alone.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from helpers import NETLAB, lab_namespaces, netlab, unique_lab, write_topology

pytestmark = pytest.mark.root


def default_folder(*args: str) -> subprocess.CompletedProcess:
    """netlab with the default state folder: NETLAB_STATE_DIR unset, whatever the suite's is."""
    env = {k: v for k, v in os.environ.items() if k != "NETLAB_STATE_DIR"}
    return subprocess.run(NETLAB + list(args), capture_output=True, text=True, env=env, timeout=120)


def test_a_lab_up_with_another_state_folder_is_not_lost_and_down_force_leaves_it(tmp_path):
    lab = unique_lab("sd")
    own = {"NETLAB_STATE_DIR": str(tmp_path / "state")}
    topo = write_topology(tmp_path, f"name: {lab}\nnodes: [{{name: n1}}]\n"
                                    "pods: [{name: a, node: n1}, {name: b, node: n1}]\n")
    default_lab_folder = os.path.join("/run/netlab", lab)
    try:
        netlab("up", "-t", topo, env=own)
        names = lab_namespaces(lab)
        assert len(names) >= 3, names
        tag = subprocess.run(["ip", "netns", "exec", names[0], "sysctl", "-n", "net.ipv4.conf.default.tag"],
                             capture_output=True, text=True, check=True).stdout.strip()
        assert tag.isdigit() and tag != "0"  # the tag names the state folder

        said = (f"netlab: lab {lab} is up under state folder {tmp_path}/state, not /run/netlab: its namespaces (")
        listed = default_folder("list")
        assert listed.returncode == 0, listed
        rows = [line.split()[:2] for line in listed.stdout.splitlines() if line.split()[:1] == [lab]]
        assert rows == [[lab, "elsewhere"]], listed
        assert said in listed.stderr and "lost" not in listed.stderr.split(lab, 1)[1].split("\n")[0], listed

        forced = default_folder("down", "--lab", lab, "--force")
        assert (forced.returncode, forced.stdout) == (3, ""), forced
        assert forced.stderr.startswith(said) and forced.stderr.count("\n") == 1, forced
        assert f"`sudo NETLAB_STATE_DIR={tmp_path}/state netlab down --lab {lab} --force`" in forced.stderr, forced
        assert lab_namespaces(lab) == names  # every namespace is still there
        assert not os.path.exists(default_lab_folder)  # and nothing of it was made in the default folder
        assert netlab("status", "--lab", lab, env=own).returncode == 0  # the lab is as planned

        down = netlab("down", "--lab", lab, env=own)
        assert down.stdout.startswith(f"lab {lab} is down ("), down
        assert lab_namespaces(lab) == []
    finally:
        if lab_namespaces(lab):
            netlab("down", "--lab", lab, check=False, env=own)


API_UP = """
import sys
from netlab import Lab
from netlab.errors import NetlabError
try:
    Lab.up(sys.argv[1])
except NetlabError as exc:
    print(type(exc).__name__, exc.exit_code, exc)
"""


def test_up_of_its_file_from_another_folder_repeats_that_up_with_the_labs_folder(tmp_path):
    """`up -t FILE` of a file whose lab is up under another state folder met the lab's namespaces, and its
    collision line ended in that folder's `down`, which nobody asked for: now the line of `list` and `down --force`
    (StateElsewhere), with the command typed, run with that folder; Lab.up in a Python caller's words."""
    lab = unique_lab("mxsd")
    own, here = {"NETLAB_STATE_DIR": str(tmp_path / "state")}, {"NETLAB_STATE_DIR": str(tmp_path / "here")}
    topo = write_topology(tmp_path, f"name: {lab}\nnodes: [{{name: n1}}]\npods: [{{name: a, node: n1}}]\n")
    try:
        netlab("up", "-t", topo, env=own)
        names = lab_namespaces(lab)
        said = f"netlab: lab {lab} is up under state folder {tmp_path}/state, not {tmp_path}/here: its namespaces ("
        up = netlab("up", "-t", topo, env=here, check=False)
        assert (up.returncode, up.stdout) == (3, ""), up
        assert up.stderr.startswith(said) and up.stderr.count("\n") == 1 and "down" not in up.stderr, up.stderr
        assert up.stderr.endswith(f"`sudo NETLAB_STATE_DIR={tmp_path}/state netlab up -t {topo}`\n"), up.stderr
        api = subprocess.run([sys.executable, "-c", API_UP, topo], capture_output=True, text=True, timeout=120,
                             env={**os.environ, **here})
        assert api.returncode == 0 and api.stdout.startswith(f"StateElsewhere 3 {said[len('netlab: '):]}"), api
        assert f"run the program with NETLAB_STATE_DIR={tmp_path}/state in its environment" in api.stdout, api
        assert lab_namespaces(lab) == names and netlab("status", "--lab", lab, env=own).returncode == 0
    finally:
        if lab_namespaces(lab):
            netlab("down", "--lab", lab, check=False, env=own)
