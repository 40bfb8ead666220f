"""`doctor -t FILE` of a running lab checks the iptables tools of the backend the lab was made in (QA hostenv57 4):
of a lab made with NETLAB_IPTABLES=legacy it checked the machine's iptables-nft only, said all was well, and
`status` then failed "iptables-legacy-save is not installed"."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from helpers import NETLAB, netlab

pytestmark = pytest.mark.root


def _without_legacy_tools(*args: str) -> subprocess.CompletedProcess:
    """The CLI in a mount namespace of its own where the legacy iptables program is not there (not executable)."""
    legacy = os.path.realpath(shutil.which("iptables-legacy-save", path="/usr/sbin:/sbin") or "")
    assert legacy, "iptables-legacy-save is not installed here"
    script = 'mount --bind /dev/null "$0" && exec "$@"'
    return subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", script, legacy, *NETLAB,
                           *args], capture_output=True, text=True, timeout=300)


def test_doctor_checks_the_legacy_tools_of_a_lab_made_with_them(labs):
    lab = labs.name("he")
    path, _ = labs.up(f"name: {lab}\nnodes: [{{name: n1}}]\npods: [{{name: a, node: n1}}]\n",
                      env={"NETLAB_IPTABLES": "legacy"})
    here = netlab("doctor", "-t", path, check=False)
    assert "ok    tool iptables-restore: /usr/sbin/iptables-legacy-restore, v" in here.stdout, here.stdout
    assert "legacy backend" in here.stdout
    doctor = _without_legacy_tools("doctor", "-t", path)
    assert doctor.returncode == 3, doctor.stdout + doctor.stderr
    # every legacy tool gone: the line titled iptables-restore names it (it named iptables-save: QA mf63 defect 7)
    assert "FAIL  tool iptables-restore: iptables-legacy-restore is not installed" in doctor.stdout, doctor.stdout
    status = _without_legacy_tools("status", "--lab", lab)  # what the doctor said: the lab's own commands need them
    assert status.returncode == 3 and "iptables-legacy-restore is not installed" in status.stderr, status.stderr
