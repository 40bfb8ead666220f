"""A lab's ``logs/`` bind-mounted from a user's folder, or ``logs/``/``dns/`` a symlink to one (root; QA q47 1).

A bind mount of a folder of the same file system (the state folder and the user's both on /) has the lab's
folder's st_dev, so ``down`` took it for its own and deleted every file in it, names netlab never writes too, then
left the lab's folder (the mount point was busy) for `list` to call lost. The containers' log clean-up followed a
symlink at ``logs/``, and ``up`` wrote the cluster DNS records through a symlinked ``dns/``. Now the user's folder
keeps every file, ``down`` says in one warning line what it left and why (exit 0, the namespaces gone, the folder
kept unmarked: no lab's, listed by nobody), and ``up`` writes nothing through the link and says so.
"""

from __future__ import annotations

import os
import shutil

import pytest

from helpers import lab_namespaces, netlab, state_path, wait_for
from netlab.realize import lab_folder
from private_mounts import PrivateMounts

pytestmark = pytest.mark.root


def _topology(lab: str) -> str:
    return (f"name: {lab}\nnodes: [{{name: n1}}]\npods:\n"
            "  - {name: a, node: n1, labels: {app: web}}\n"
            "  - {name: b, node: n1, containers: [{name: main, command: [sh, -c, 'echo hi; exec sleep 600']}]}\n"
            "services:\n  - {name: web, selector: {app: web}, ports: [{port: 80, targetPort: 8080}]}\n")


def _files(folder) -> dict[str, str]:
    out = {}
    for base, _, files in os.walk(folder):
        for name in files:
            path = os.path.join(base, name)
            out[os.path.relpath(path, folder)] = open(path).read()
    return out


def test_down_empties_no_users_folder_bind_mounted_on_logs(labs, tmp_path):
    lab = labs.name("sf")
    labs.up(_topology(lab))
    logs = state_path(lab, "logs")
    assert wait_for(lambda: os.path.exists(os.path.join(logs, "b.main.log")), timeout=10)
    victim = tmp_path / "victim"
    (victim / "sub").mkdir(parents=True)
    (victim / "archive.txt").write_text("USER\n")
    (victim / "b.main.log").write_text("keep\n")
    (victim / "sub" / "x").write_text("USER\n")
    before = _files(victim)
    ns = PrivateMounts(logs)  # the bind mount, and the commands that meet it (private_mounts.py)
    try:
        ns.run("mount", "--bind", str(victim), logs)
        assert os.stat(ns.seen(logs)).st_dev == os.stat(state_path(lab)).st_dev  # the case "same device" let through
        down = ns.netlab("down", "--lab", lab, check=False)
        assert down.returncode == 0 and lab_namespaces(lab) == [], down
        assert _files(victim) == before, "down deleted the user's files through the bind mount"
        line = f"netlab: warning: {logs}: {lab_folder.ON_A_MOUNT}; left alone (and the folder with it)"
        assert down.stderr.splitlines() == [line], down.stderr
        assert os.listdir(state_path(lab)) == ["logs"]  # unmarked: no lab's any more
        listed = ns.netlab("list", check=False)
        assert lab not in listed.stdout + listed.stderr, listed
    finally:
        ns.close()  # the bind mount goes with the namespace
    assert _files(victim) == before
    shutil.rmtree(state_path(lab))  # the test's own lab folder: what netlab wrote below the mount before it


def test_up_writes_no_dns_records_through_a_symlinked_dns_folder_and_down_follows_no_logs_link(labs, tmp_path):
    lab = labs.name("sf")
    path, _ = labs.up(_topology(lab))
    dns, logs = state_path(lab, "dns"), state_path(lab, "logs")
    assert os.path.exists(os.path.join(dns, "hosts"))
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "hosts").write_text("USER\n")
    (victim / "b.main.log").write_text("keep\n")
    (victim / "other.txt").write_text("keep\n")
    before = _files(victim)
    os.rename(dns, tmp_path / "dns.moved")
    os.symlink(victim, dns)
    up = netlab("up", "-t", path, check=False)
    assert up.returncode == 0, up
    assert _files(victim) == before, "up wrote the DNS records through the symlink"
    assert (f"netlab: warning: dns: {dns}: {lab_folder.A_SYMLINK}; the cluster DNS records are not written "
            "there (left alone)") in up.stderr.splitlines(), up.stderr
    status = netlab("status", "--lab", lab, check=False)
    assert status.returncode == 0 and "dns/hosts" not in status.stdout + status.stderr, status  # not drift
    os.unlink(dns)
    os.rename(logs, tmp_path / "logs.moved")
    os.symlink(victim, logs)
    down = netlab("down", "--lab", lab, check=False)
    assert down.returncode == 0 and lab_namespaces(lab) == [], down
    assert _files(victim) == before, "down deleted the user's files through the symlink"
    assert not os.path.lexists(state_path(lab))  # the link itself went, never followed, then the folder
