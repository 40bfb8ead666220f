"""The repair line `status` prints reaches the lab when the user's labs live in a state folder of their own (root).

sudo drops the environment: under NETLAB_STATE_DIR, status said "run `sudo netlab up -t FILE` to repair", which
looked in /run/netlab, found the lab's namespaces tagged with the user's folder and refused to touch them (or, for
`up --lab L`, found no such lab). Now the line carries the folder after sudo, shell-quoted (errors.netlab_command).
The line is run as printed, by a shell, with no NETLAB_STATE_DIR in its environment ("sudo " taken off when the
machine has no sudo: the tests run as root; `netlab` there is this checkout's, first on PATH).
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys

import pytest

import netlab as netlab_package
from helpers import lab_namespaces, netlab, unique_lab, write_topology

pytestmark = pytest.mark.root


# pyroute2 in a process of its own (test_cni_ptp_route_trace_live.py's way): its NetNS forks a child that enters
# the namespace, and a fork of pytest's process runs pytest's exit hooks there; flags 0: it makes no namespace.
DEL_VETH = """
import sys
from pyroute2 import NetNS
pod, node = sys.argv[1:]
with NetNS(pod, flags=0) as ns:
    (eth0,) = ns.get_links(ifname="eth0")
    peer = eth0.get_attr("IFLA_LINK")
with NetNS(node, flags=0) as ns:
    (veth,) = ns.get_links(peer)
    ns.link("del", index=peer)
print(veth.get_attr("IFLA_IFNAME"))
"""


def delete_pod_veth(lab: str, pod: str, node: str) -> str:
    """A learner's drift: the node end of the pod's veth deleted (its eth0 goes with it), by netlink. Its name."""
    done = subprocess.run([sys.executable, "-c", DEL_VETH, f"{lab}-{pod}", f"{lab}-{node}"], capture_output=True,
                          text=True, check=True, timeout=30)
    return done.stdout.strip()


def run_as_typed(line: str, shim: str) -> subprocess.CompletedProcess:
    """``line`` through ``sh -c``, as a user's shell runs it, without NETLAB_STATE_DIR in the environment; `netlab`
    resolves to this checkout's (a script in ``shim``, first on PATH)."""
    if shutil.which("sudo") is None:
        line = line.removeprefix("sudo ")  # root already: sudo adds nothing but the dropped environment
    env = {k: v for k, v in os.environ.items() if k != "NETLAB_STATE_DIR"}
    env["PATH"] = f"{shim}:{env.get('PATH', '/usr/sbin:/usr/bin:/sbin:/bin')}"
    return subprocess.run(["sh", "-c", line], capture_output=True, text=True, env=env, timeout=300)


def test_status_repair_line_typed_as_printed_repairs_the_lab_in_its_state_folder(tmp_path):
    folder = tmp_path / "my state"  # a space: the folder must be quoted in the line
    folder.mkdir(mode=0o700)
    env = {"NETLAB_STATE_DIR": str(folder)}
    shim = tmp_path / "bin"
    shim.mkdir()
    root = os.path.dirname(os.path.dirname(netlab_package.__file__))
    (shim / "netlab").write_text(f"#!/bin/sh\nPYTHONPATH={shlex.quote(root)} exec {shlex.quote(sys.executable)} "
                                 "-m netlab \"$@\"\n")
    (shim / "netlab").chmod(0o755)
    lab = unique_lab("sdr")
    path = write_topology(tmp_path, f"name: {lab}\nnodes: [{{name: n1}}]\npods: [{{name: a, node: n1}}]\n")
    try:
        netlab("up", "-t", path, env=env)
        veth = delete_pod_veth(lab, "a", "n1")
        status = netlab("status", "--lab", lab, env=env, check=False)
        assert status.returncode == 1 and f"missing: link {veth} in {lab}-n1" in status.stdout, status
        line = status.stdout.splitlines()[-1]
        want = f"sudo NETLAB_STATE_DIR={shlex.quote(str(folder))} netlab up -t {path}"
        assert line == f"run `{want}` to repair", status.stdout
        said = re.fullmatch(r"run `(.*)` to repair", line)
        assert said is not None
        repaired = run_as_typed(said.group(1), str(shim))
        assert repaired.returncode == 0, repaired
        assert f"add link {veth} in {lab}-n1" in repaired.stdout, repaired
        again = netlab("status", "--lab", lab, env=env, check=False)
        assert again.returncode == 0 and again.stdout.endswith("all as planned\n"), again
    finally:
        netlab("down", "--lab", lab, env=env, check=False)
    assert lab_namespaces(lab) == [] and not (folder / lab).exists()
