"""Debian's CNI plugins removed after `up` (QA q50 #5), on the real machine (root): `status` runs in a private mount
namespace of its own (``unshare -m``) with an empty folder bound over /usr/lib/cni, the machine's folder never
touched. It says the doctor's `tool CNI plugins` line with the apt-get fix, exit 3, as `up` refuses it; before, it
called the lab drifted (exit 1) and named `up` as the repair. The fake side: tests/unit/test_cni_plugins_gone_status.py.
"""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from helpers import NETLAB, in_netns, netlab

pytestmark = pytest.mark.root

DEBIAN = "/usr/lib/cni"
TOPOLOGY = """name: {lab}
network: {{mode: vxlan, cni: reference}}
nodes: [{{name: n1}}, {{name: n2}}]
pods: [{{name: a, node: n1}}, {{name: b, node: n2}}]
"""


def without_plugins(empty: str, *args: str) -> subprocess.CompletedProcess:
    script = f'mount --bind "{empty}" {DEBIAN} && exec "$@"'
    return subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", script, "hide", *NETLAB, *args],
                          capture_output=True, text=True, timeout=300)


def test_plugins_gone_after_up_are_the_machines_not_drift(labs, tmp_path):
    assert os.access(f"{DEBIAN}/bridge", os.X_OK), "containernetworking-plugins missing: run scripts/setup.sh"
    lab = labs.name("nj")
    labs.up(TOPOLOGY.format(lab=lab))
    empty = tmp_path / "empty"
    empty.mkdir()
    up = without_plugins(str(empty), "up", "--lab", lab)
    assert up.returncode == 3 and up.stderr.startswith("netlab: FAIL  tool CNI plugins: ") and \
        "fix: apt-get install containernetworking-plugins" in up.stderr, up.stderr
    doctors = up.stderr.strip().splitlines()[0].removeprefix("netlab: ")
    status = without_plugins(str(empty), "status", "--lab", lab)
    assert "Traceback" not in status.stderr and "drift" not in status.stdout + status.stderr, status.stdout
    assert status.returncode == 3 and status.stderr.strip() == f"netlab: {doctors}", status.stdout + status.stderr
    # the lab itself as it was: as planned with the plugins, and its pods reach each other across the overlay
    assert netlab("status", "--lab", lab, check=False).returncode == 0
    b = in_netns(f"{lab}-b", "ip", "-j", "-4", "addr", "show", "eth0", check=True).stdout

    ip = json.loads(b)[0]["addr_info"][0]["local"]
    assert in_netns(f"{lab}-a", "ping", "-c1", "-W2", ip).returncode == 0
