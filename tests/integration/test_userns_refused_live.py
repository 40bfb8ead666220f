"""The real CLI as root of a user namespace of its own (`unshare -Ur`, `unshare -Urm`: a rootless or userns-remapped
container), QA report caps57 defect 2 (the fake side: tests/unit/test_caps_needed.py).

Its CapEff is full, so the capability check passed: `doctor` said "27 ok ... 0 failed", `up` failed halfway
("PermissionError: mount /run/netns", or "setns" with a mount namespace of its own; rolled back, exit 4), and `list`
told uid 0 to "run it with sudo". Nothing works there: every command refuses up front, in one line.
"""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from helpers import NETLAB, unique_lab, write_topology
from test_capless_root_live import CHECKOUT, netns_of, one_line, one_pod, run

pytestmark = pytest.mark.skipif(shutil.which("unshare") is None, reason="needs util-linux's unshare")
SAID = "host capabilities: root of a user namespace, not the host's (uid_map 0 0 1"


@pytest.mark.parametrize("flags", ["-Ur", "-Urm", "-Urmn"])
def test_root_of_a_user_namespace_is_refused_up_front_by_every_command(tmp_path, flags):
    lab = unique_lab("cp")
    path = write_topology(tmp_path, one_pod(lab), "topo.yaml")
    userns = ["unshare", flags]
    for words in (["up", "-t", path], ["list"], ["status", "--lab", lab], ["down", "--lab", lab]):
        proc = run(*words, prefix=userns)
        one_line(proc, SAID)
        assert "--privileged" in proc.stderr and "sudo" not in proc.stderr, proc.stderr
        assert netns_of(lab) == []
    doctor = run("doctor", "-t", path, prefix=userns)
    assert doctor.returncode == 3 and doctor.stdout.count("FAIL") == 1 and SAID in doctor.stdout, doctor
    assert "no other check was run" in doctor.stdout


def test_root_of_a_user_namespace_that_owns_its_network_mount_and_uts_namespaces_runs_a_lab(tmp_path):
    """An unprivileged LXC/Incus container's root (`unshare -Urmnu`): its user namespace owns the network, mount and
    UTS namespaces netlab makes namespaces from and comes back to, so `ip netns`, setns, sysctls and rules all work
    there. Not refused: up, status and down of a lab run in it (seen: 'lab ... is up', 'all as planned')."""
    lab = unique_lab("cp")
    path = write_topology(tmp_path, one_pod(lab), "topo.yaml")
    cli = " ".join(NETLAB)
    script = (  # its own /run/netns and /etc/netns, as a container has: nothing of it is left on the host
        "set -e; mkdir -p /run/netns; mount -t tmpfs tmpfs /run/netns; "
        "if [ -d /etc/netns ]; then mount -t tmpfs tmpfs /etc/netns; fi; "
        f"{cli} up -t {path}; {cli} status --lab {lab}; {cli} down --lab {lab}")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([CHECKOUT, *filter(None, [os.environ.get("PYTHONPATH")])])}
    proc = subprocess.run(["unshare", "-Urmnu", "--propagation", "private", "sh", "-c", script], capture_output=True,
                          text=True, timeout=180, env=env)
    assert proc.returncode == 0, (proc.returncode, proc.stdout, proc.stderr)
    assert f"lab {lab} is up" in proc.stdout and "all as planned" in proc.stdout, proc.stdout
    assert f"lab {lab} is down" in proc.stdout, proc.stdout
    assert netns_of(lab) == []
