"""A running lab's namespace unmounted by hand, on a real lab (root).

``umount /run/netns/<lab>-<pod>`` is the first half of ``ip netns del``: the name no longer holds the namespace,
and the empty file stays. Every command says it as a deleted namespace that ``up`` makes again, in one line
(``exec`` was a traceback: setns's EINVAL on the empty file), and ``up`` does make it again (it refused, exit 3,
until the user removed the file by hand): the name is one the lab's state lists."""

from __future__ import annotations

import os
import shlex
import subprocess

import pytest

from helpers import netlab
from netlab.kernel import netns as nsmod

pytestmark = pytest.mark.root


def small_lab(labs, prefix: str) -> tuple[str, str]:
    lab = labs.name(prefix)
    path, _ = labs.up(f"name: {lab}\nnetwork: {{mode: host-gw}}\nnodes: [{{name: n1}}, {{name: n2}}]\n"
                      "pods: [{name: a, node: n1, ip: 10.244.0.2}, {name: b, node: n2, ip: 10.244.1.2}]\n")
    return lab, path


def unmount(netns: str) -> None:
    subprocess.run(["umount", f"/run/netns/{netns}"], check=True)
    path = nsmod.netns_path(netns)
    assert os.path.isfile(path) and os.path.getsize(path) == 0 and not nsmod.is_netns_mount(netns)


def test_exec_into_an_unmounted_pod_namespace_is_one_line_naming_the_repair(labs):
    lab, path = small_lab(labs, "umx")
    unmount(f"{lab}-a")
    proc = netlab("exec", "--lab", lab, "a", "--", "true", check=False)
    assert proc.returncode == 2, proc.stderr  # as inspect and trace say the same namespace (NetnsGone)
    assert "Traceback" not in proc.stderr and proc.stderr.count("\n") == 1, proc.stderr
    assert proc.stderr == (f"netlab: namespace {lab}-a was deleted while lab {lab} is up; "
                           f"`sudo netlab up -t {shlex.quote(path)}` makes it again\n")
    inspected = netlab("inspect", "--lab", lab, "a", check=False)
    assert inspected.returncode == 2 and inspected.stderr == proc.stderr, inspected.stderr
    # Nothing changed: the file is still there, empty, and the other pod still runs commands.
    assert os.path.getsize(nsmod.netns_path(f"{lab}-a")) == 0
    assert netlab("exec", "--lab", lab, "b", "--", "hostname").stdout.strip() == "b"
