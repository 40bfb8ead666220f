"""A read-only /etc (`docker run --read-only`), emulated by a read-only bind mount of /etc in a mount namespace of the
test's own (QA hostenv57 7): the doctor said nothing, and `up` warned "cannot write /etc/netns/...: Read-only file
system" and exited 0, every pod without its hosts file and resolv.conf, drift no `up` could repair. The doctor says
it (a FAIL for a lab with pods, with the reason and a fix), and `up` refuses in that line before it makes anything."""

from __future__ import annotations

import os

import pytest

from helpers import netlab, unique_lab, write_topology
from private_mounts import PrivateMounts
from watching import watching

pytestmark = pytest.mark.root

SAID = ("FAIL  host pods' /etc files: /etc/netns is on a read-only file system: netlab cannot write "
        "/etc/netns/<pod>/hosts and resolv.conf")


def test_a_read_only_etc_is_said_by_the_doctor_and_refused_by_up(labs, tmp_path):
    lab = labs.name("he")
    path = write_topology(tmp_path, f"name: {lab}\nnodes: [{{name: n1}}]\npods: [{{name: a, node: n1}}]\n")
    ns = PrivateMounts("/etc")
    try:
        ns.run("mount", "--bind", "/etc", "/etc")
        ns.run("mount", "-o", "remount,bind,ro", "/etc")
        doctor = ns.netlab("doctor", "-t", path, check=False)
        assert doctor.returncode == 3 and SAID in doctor.stdout, doctor.stdout + doctor.stderr
        assert "`--tmpfs /etc/netns`" in doctor.stdout
        up = ns.netlab("up", "-t", path, check=False)
        assert up.returncode == 3 and up.stderr.count("\n") == 1 and SAID in up.stderr, up.stdout + up.stderr
        assert not [n for n in os.listdir("/run/netns") if n.startswith(f"{lab}-")]
        assert not os.path.lexists(f"/etc/netns/{lab}-a")
    finally:
        ns.close()
    here = netlab("doctor", "-t", path, check=False)  # the host's /etc, writable: said so
    assert "ok    host pods' /etc files: " in here.stdout, here.stdout


def test_a_repair_up_with_nothing_to_write_in_etc_works_on_a_read_only_etc_and_one_with_a_new_pod_is_refused(labs,
                                                                                                          tmp_path):
    """QA caps58 defect 5: a repair `up` of a running lab whose pods' files in /etc/netns are all as planned writes
    nothing there, yet the doctor's pod-files FAIL refused it on a read-only /etc (the route it would have put back
    stayed broken). A topology with a new pod, whose files must be written, is still refused."""
    lab = labs.name("cp")
    text = f"name: {lab}\nnodes: [{{name: n1}}]\npods: [{{name: a, node: n1}}]\n"
    path, _ = labs.up(text)
    grown = write_topology(tmp_path, text.replace("a, node: n1}]", "a, node: n1}, {name: b, node: n1}]"),
                           "grown.yaml")
    files = {f: open(f"/etc/netns/{lab}-a/{f}").read() for f in os.listdir(f"/etc/netns/{lab}-a")}
    netlab("exec", "--lab", lab, "n1", "--", "ip", "link", "set", "cni0", "down")  # drift up repairs, none in /etc
    ns = PrivateMounts("/etc")
    try:
        ns.run("mount", "--bind", "/etc", "/etc")
        ns.run("mount", "-o", "remount,bind,ro", "/etc")
        up = ns.netlab("up", "-t", path, check=False)
        assert up.returncode == 0 and SAID not in up.stderr, up.stdout + up.stderr
        new = ns.netlab("up", "-t", grown, check=False)
        assert new.returncode == 3 and SAID in new.stderr, new.stdout + new.stderr
    finally:
        ns.close()
    assert netlab("status", "--lab", lab, check=False).returncode == 0  # repaired
    assert {f: open(f"/etc/netns/{lab}-a/{f}").read() for f in os.listdir(f"/etc/netns/{lab}-a")} == files
    assert not os.path.lexists(f"/etc/netns/{lab}-b")


def test_a_watched_lab_on_a_read_only_etc_applies_an_edit_with_nothing_to_write_there(tmp_path):
    """`up --watch`'s apply of its edited file checked the machine without what a repair `up` leaves out
    (services.lifecycle.nothing_to_write): on a read-only /etc an edit that writes nothing in /etc/netns (a
    NetworkPolicy) was refused with the pod-files FAIL, as plain `up -t FILE` of it is not."""
    lab = unique_lab("mxro")
    text = f"name: {lab}\nnodes: [{{name: n1}}]\npods: [{{name: a, node: n1, labels: {{app: a}}}}]\n"
    path = write_topology(tmp_path, text)
    netlab("up", "-t", path)
    ns = PrivateMounts("/etc")
    try:
        ns.run("mount", "--bind", "/etc", "/etc")
        ns.run("mount", "-o", "remount,bind,ro", "/etc")
        with watching(lab) as start:
            watcher = start(path, argv=ns.argv)  # its first apply: a repair up, nothing to write in /etc
            mark = len(watcher.lines)
            with open(path, "a") as fh:
                fh.write("networkPolicies:\n  - {name: deny-a, spec: {podSelector: {matchLabels: {app: a}}, "
                         "policyTypes: [Ingress]}}\n")
            line = watcher.wait_for_line(f"saw: {path} changed; did: ", after=mark, timeout=30)
            assert SAID not in line and "nothing" not in line.split("; did: ", 1)[1], line
            assert netlab("status", "--lab", lab, check=False).returncode == 0
            mark = len(watcher.lines)  # a new pod's files must be written there: still refused, in that line
            with open(path) as fh:
                grown = fh.read().replace("app: a}}]", "app: a}}, {name: b, node: n1}]")
            with open(path, "w") as fh:
                fh.write(grown)
            line = watcher.wait_for_line(f"saw: {path} changed; did: ", after=mark, timeout=30)
            assert f"did: apply failed: {SAID}" in line, line
    finally:
        ns.close()
