"""`netlab impair` of a lab that is not up though its state remains, on real namespaces (QA q19 1).

Of a lab `netlab list` shows `gone` (every namespace `ip netns del`'d) or one whose `down` was killed halfway,
`impair --lab L c:eth0 --loss 1%` ran the up that sets it, which made the whole lab again (exit 0, `list`: up),
and `impair --lab L` listed every interface "no such interface". Now both refuse as status does, and the kernel
(`ip -j netns list`) has no namespace of the lab made again. The fake kernel's: tests/unit/test_impair_not_up.py.
"""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from netlab.errors import down_command
from helpers import lab_down, lab_namespaces, netlab, state_path, unique_lab, write_topology

pytestmark = pytest.mark.root


def topology(lab: str) -> str:
    return f"name: {lab}\nnodes:\n  - {{name: n1}}\npods:\n  - {{name: c, node: n1}}\n  - {{name: w, node: n1}}\n"


def kernel_netns(lab: str) -> list[str]:
    """The lab's namespaces as the kernel lists them (`ip -j netns list`)."""
    out = subprocess.run(["ip", "-j", "netns", "list"], capture_output=True, text=True, check=True).stdout
    return sorted(n["name"] for n in json.loads(out or "[]") if n["name"].startswith(f"{lab}-"))


def test_impair_of_a_gone_lab_is_refused_with_status_s_line_and_makes_nothing(tmp_path):
    """Then a plain `down` (no --lab, the only lab of its state folder: the test's own) forgets it (QA q19 2: it said
    "no lab is up; 1 lab is gone (L): ... `sudo netlab down --lab L` forgets it", exit 2)."""
    lab = unique_lab("ig")
    path = write_topology(tmp_path, topology(lab))
    root = str(tmp_path / "state")
    env = {"NETLAB_STATE_DIR": root, "NETLAB_LAB": ""}
    try:
        netlab("up", "-t", path, env=env)
        for name in kernel_netns(lab):  # behind netlab's back: `netlab list` says gone
            subprocess.run(["ip", "netns", "del", name], check=True)
        status = netlab("status", "--lab", lab, check=False, env=env)
        assert status.returncode == 3, status
        for args in (("impair", "--lab", lab, "c:eth0", "--loss", "1%"), ("impair", "--lab", lab)):
            r = netlab(*args, check=False, env=env)
            assert (r.returncode, r.stdout, r.stderr) == (3, "", status.stderr), (args, r)
            assert kernel_netns(lab) == [], (args, kernel_netns(lab))
        listed = json.loads(netlab("list", "-o", "json", env=env).stdout)
        assert [row["phase"] for row in listed if row["lab"] == lab] == ["gone"], listed
        plain = netlab("status", check=False, env=env)  # no lab named: no lab is up, as before
        assert plain.returncode == 2 and plain.stderr.startswith(f"netlab: no lab is up; 1 lab is gone ({lab})"), plain
        down = netlab("down", check=False, env=env)
        assert (down.returncode, down.stderr) == (0, ""), down
        assert down.stdout.startswith(f"lab {lab} is down (0 namespaces removed"), down
        assert not os.path.exists(os.path.join(root, lab)) and kernel_netns(lab) == []
    finally:
        netlab("down", "--lab", lab, check=False, env=env)
        assert kernel_netns(lab) == []


def test_impair_of_a_lab_whose_down_was_killed_says_list_s_line_and_makes_nothing(tmp_path):
    lab = unique_lab("ig")
    path = write_topology(tmp_path, topology(lab))
    try:
        netlab("up", "-t", path)
        killed = netlab("down", "--lab", lab, check=False,
                        env={"NETLAB_FAULT_POINT": "down-deleted", "NETLAB_FAULT_MODE": "kill"})
        assert killed.returncode != 0 and kernel_netns(lab) == [], killed
        with open(state_path(lab, "state.json")) as fh:
            assert json.load(fh)["phase"] == "deleting"
        r = netlab("impair", "--lab", lab, "c:eth0", "--loss", "1%", check=False)
        assert r.returncode == 2 and r.stdout == "" and len(r.stderr.splitlines()) == 1, r
        assert r.stderr.startswith(f"netlab: lab {lab}: the `netlab down` that was taking it down"), r.stderr
        assert r.stderr.endswith(f"ended before it finished (killed); `{down_command(lab)}` finishes it\n")
        assert kernel_netns(lab) == [] and lab_namespaces(lab) == []
        with open(state_path(lab, "state.json")) as fh:
            assert json.load(fh)["phase"] == "deleting"  # not made up again
    finally:
        lab_down(lab)
