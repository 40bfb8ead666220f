"""Two labs whose namespace names collide, up at the same moment (QA q30, defect 1): lab X's pod a-p and lab X-a's
pod p both need namespace X-a-p. X's `up` is held at its test hook ``netns-checked`` (NETLAB_FAULT_MODE=pause):
it found the names it makes free and made none. X-a then comes up whole, X-a-p among its namespaces, and X goes on:
its create finds the pin there (EEXIST). It says the clean refusal `up` gives when not racing (whose it is, by its
tag; exit 3), rolled back: none of its namespaces and no state left, X-a's namespace as X-a made it (same inode,
same tag). No sleep, no timing.
"""

from __future__ import annotations

import os
import shlex
import subprocess

import pytest

from helpers import NETLAB, as_planned, lab_down, lab_namespaces, netlab, netns_cookie, state_path, unique_lab, \
    write_topology

pytestmark = pytest.mark.root


def topology(lab: str, pods: tuple[str, ...]) -> str:
    lines = [f"  - {{name: {pod}, node: n1, ip: 10.244.0.{2 + i}}}" for i, pod in enumerate(pods)]
    return f"""name: {lab}
nodes:
  - {{name: n1, ip: 192.168.122.215, podCIDR: 10.244.0.0/24}}
pods:
""" + "\n".join(lines) + "\n"


def test_a_namespace_the_other_lab_made_meanwhile_is_refused_cleanly(tmp_path):
    x = unique_lab("nc")
    y = f"{x}-a"
    path_x = write_topology(tmp_path, topology(x, ("a-p", "b")), "x.yaml")
    path_y = write_topology(tmp_path, topology(y, ("p",)), "y.yaml")
    shared = f"{x}-a-p"
    proc = None
    try:
        proc = subprocess.Popen(NETLAB + ["up", "-t", path_x], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True,
                                env={**os.environ, "NETLAB_FAULT_POINT": "netns-checked", "NETLAB_FAULT_MODE": "pause"})
        assert proc.stderr.readline() == "netlab: paused at netns-checked (test hook)\n"
        assert lab_namespaces(x) == []  # X made none yet
        netlab("up", "-t", path_y)
        assert shared in lab_namespaces(y)
        cookie = netns_cookie(shared)
        tag = netlab("exec", "--lab", y, "p", "--", "cat", "/proc/sys/net/ipv4/conf/all/tag").stdout

        out, err = proc.communicate("\n", timeout=300)  # X goes on: its create of X-a-p finds the pin
        assert proc.returncode == 3, (out, err)
        # under NETLAB_STATE_DIR, the variable after sudo, as every other hint says it (rb61 8)
        sudo = (f"sudo NETLAB_STATE_DIR={shlex.quote(os.environ['NETLAB_STATE_DIR'])} netlab"
                if os.environ.get("NETLAB_STATE_DIR") else "sudo netlab")
        assert err.splitlines() == [f"netlab: namespace {shared} already exists and belongs to lab {y}, which is up "
                                    f"(see `{sudo} list`); rename lab {x}, or take {y} down first (`{sudo} down --lab "
                                    f"{y}`); rolled back"], err
        # Rolled back: none of X's namespaces, no state; X-a's namespace is the one X-a made, and X-a as planned
        assert [n for n in lab_namespaces(x) if not n.startswith(y + "-")] == []
        assert not os.path.exists(state_path(x))
        assert netns_cookie(shared) == cookie
        assert netlab("exec", "--lab", y, "p", "--", "cat", "/proc/sys/net/ipv4/conf/all/tag").stdout == tag
        assert as_planned(y)
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.communicate()
        lab_down(y)
        lab_down(x)
