"""A container command whose program someone else can change is refused by `up` before it makes anything (QA
sec58 2): root would have run nobody's program. Root, real namespaces: none made, no state, the program never
ran; the same program made root's comes up and runs."""

from __future__ import annotations

import os
import pwd
import uuid

import pytest

from helpers import anything_of, lab_namespaces, netlab, write_program, write_topology

pytestmark = pytest.mark.root


def test_up_refuses_a_command_program_of_someone_elses_and_changes_nothing(labs, tmp_path):
    os.chmod(tmp_path, 0o755)
    lab = f"sec{uuid.uuid4().hex[:5]}"
    labs.names.append(lab)
    proof = tmp_path / "ran"
    prog = tmp_path / "srv"
    write_program(prog, f"#!/bin/sh\nid -u > {proof}\nexec sleep 600\n")
    os.chown(prog, pwd.getpwnam("nobody").pw_uid, -1)
    text = f"""name: {lab}
nodes: [{{name: n1}}]
pods:
  - name: a
    node: n1
    containers: [{{name: main, command: [{prog}]}}]
"""
    path = write_topology(tmp_path, text)
    os.chmod(path, 0o644)
    for command in ("validate", "up"):
        res = netlab(command, "-t", path, check=False)
        assert res.returncode == 2 and res.stderr.strip().splitlines() == [
            f"{path}:6: pods[0].containers[0].command[0]: {prog}: netlab runs as root and would run it as root, "
            "but it is owned by nobody (mode 755), not by root or you; make it root's (or yours) and writable by "
            "no one else (chmod go-w), or copy it to a folder of yours"], res.stdout + res.stderr
    assert not lab_namespaces(lab) and not anything_of(lab) and not proof.exists()

    os.chown(prog, 0, -1)
    labs.up(text)
    assert f"{lab}-a" in lab_namespaces(lab)
    # exec: a program given by its path is refused alike (exit 2, it never runs); a $SHELL of nobody's is passed
    # over for bash, in a note
    other = tmp_path / "other"
    write_program(other, f"#!/bin/sh\ntouch {tmp_path / 'other-ran'}\n")
    os.chown(other, pwd.getpwnam("nobody").pw_uid, -1)
    res = netlab("exec", "--lab", lab, "a", "--", str(other), check=False)
    assert (res.returncode, res.stdout) == (2, "") and res.stderr.splitlines() == [
        f"netlab: {other}: netlab runs as root and would run it as root, but it is owned by nobody (mode 755), "
        "not by root or you; make it root's (or yours) and writable by no one else (chmod go-w), or copy it to a "
        "folder of yours"], res.stderr
    res = netlab("exec", "--lab", lab, "a", env={"SHELL": str(other)}, input="hostname\n")
    assert res.stdout == "a\n" and res.stderr.startswith(f"netlab: not your shell {other}: "), res.stderr
    assert not (tmp_path / "other-ran").exists()
    netlab("down", "--lab", lab)
    assert proof.read_text() == "0\n"
    assert not lab_namespaces(lab)
