"""A lab's ``logs/`` or ``dns/`` a user made a file: bind-mounted from a file of theirs, or a plain file (root).

``up``'s writes and the readers (``logs``, ``status``, ``down``'s clean-ups) open a lab's sub-folder by one rule
(realize/lab_folder.open_folder): a symlink, then a mount point (a file's too), then anything that is not a folder,
each refused in its own words. Before, ``up`` called a file bind-mounted on ``logs`` "not a folder" (it must be
unmounted, not moved away); ``logs`` said "Not a directory" of a plain file there, ``status`` called the DNS records
missing though ``up`` would not write them through a file at ``dns``, and ``down`` deleted a file at ``logs``.
"""

from __future__ import annotations

import os
import shutil

import pytest

from helpers import lab_namespaces, netlab, state_path, wait_for
from netlab.realize import lab_folder
from private_mounts import PrivateMounts
from test_lab_folder_user_dirs_live import _topology

pytestmark = pytest.mark.root


def _logs_line(logs: str, why: str) -> str:
    return f"netlab: no log for b/main: {logs}: {why}; the containers' logs are not kept (their output goes to /dev/null)"


def test_a_file_at_logs_bind_mounted_or_plain_and_a_file_at_dns_are_the_users(labs, tmp_path):
    lab = labs.name("fo")
    path, _ = labs.up(_topology(lab))
    logs, dns = state_path(lab, "logs"), state_path(lab, "dns")
    assert wait_for(lambda: os.path.exists(os.path.join(logs, "b.main.log")), timeout=10)
    mine = tmp_path / "user.txt"
    mine.write_text("USER\n")
    os.rename(logs, tmp_path / "logs.moved")
    open(logs, "w").close()  # the mount point: a file
    ns = PrivateMounts(logs)  # the bind mount, and the commands that meet it (private_mounts.py)
    try:
        ns.run("mount", "--bind", str(mine), logs)
        up = ns.netlab("up", "-t", path, check=False)
        assert up.returncode == 0, up
        assert (f"netlab: warning: logs: {logs}: {lab_folder.ON_A_MOUNT}; the containers' logs are not written there "
                "(their output goes to /dev/null)") in up.stderr.splitlines(), up.stderr
        said = ns.netlab("logs", "--lab", lab, "b", "-c", "main", check=False)
        assert (said.returncode, said.stderr.strip()) == (2, _logs_line(logs, lab_folder.ON_A_MOUNT)), said
        ns.run("umount", logs)
        ns.close()
        with open(logs, "w") as fh:
            fh.write("USER logs\n")
        shutil.rmtree(dns)
        with open(dns, "w") as fh:
            fh.write("USER dns\n")
        up = netlab("up", "-t", path, check=False)
        assert up.returncode == 0, up
        lines = up.stderr.splitlines()
        assert (f"netlab: warning: logs: {logs}: {lab_folder.NOT_A_FOLDER}; the containers' logs are not written "
                "there (their output goes to /dev/null)") in lines, up.stderr
        assert (f"netlab: warning: dns: {dns}: {lab_folder.NOT_A_FOLDER}; the cluster DNS records are not written "
                "there (left alone)") in lines, up.stderr
        said = netlab("logs", "--lab", lab, "b", "-c", "main", check=False)
        assert (said.returncode, said.stderr.strip()) == (2, _logs_line(logs, lab_folder.NOT_A_FOLDER)), said
        status = netlab("status", "--lab", lab, check=False)
        assert status.returncode == 0 and "dns/hosts" not in status.stdout + status.stderr, status  # not drift
        down = netlab("down", "--lab", lab, check=False)
        assert down.returncode == 0 and lab_namespaces(lab) == [], down
        assert sorted(down.stderr.splitlines()) == [
            f"netlab: warning: {dns}: {lab_folder.NOT_A_FOLDER}; left alone (and the folder with it)",
            f"netlab: warning: {logs}: {lab_folder.NOT_A_FOLDER}; left alone (and the folder with it)"], down.stderr
        assert open(logs).read() == "USER logs\n" and open(dns).read() == "USER dns\n"
        assert sorted(os.listdir(state_path(lab))) == ["dns", "logs"]  # unmarked: no lab's any more
    finally:
        ns.close()  # the bind mount goes with the namespace (once the containers an up started there are down)
        netlab("down", "--lab", lab, check=False)
    assert mine.read_text() == "USER\n"
    shutil.rmtree(state_path(lab))  # the test's own lab folder, the user's files it was given
