"""The real CLI as root of a user namespace of its own (`unshare -Ur`, `unshare -Urm`: a rootless or userns-remapped
container), QA report caps57 defect 2 (the fake side: tests/unit/test_caps_needed.py).

Its CapEff is full, so the capability check passed: `doctor` said "27 ok ... 0 failed", `up` failed halfway
("PermissionError: mount /run/netns", or "setns" with a mount namespace of its own; rolled back, exit 4), and `list`
told uid 0 to "run it with sudo". Nothing works there: every command refuses up front, in one line.
"""

from __future__ import annotations

import shutil

import pytest

from helpers import unique_lab, write_topology
from test_capless_root_live import netns_of, one_line, one_pod, run

pytestmark = pytest.mark.skipif(shutil.which("unshare") is None, reason="needs util-linux's unshare")
SAID = "host capabilities: root of a user namespace, not the host's (uid_map 0 0 1"


@pytest.mark.parametrize("flags", ["-Ur", "-Urm"])
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
