"""A container's command runs as root on the host's file system (QA sec58 2): a program someone other than root
and the invoking user can change (the file, a folder above it, a symlink on the way) is someone else's program
run as root. The rule the CNI plugins get (model/trust.py), for the program a container command names: an
absolute path, a relative one (from /, the container's working directory), or a bare name as the container's
fixed PATH finds it. Refused by validate (FILE:LINE: field: message, -o json too) and so by up, before it
makes anything."""

from __future__ import annotations

import json
import os
import pwd
import re

import pytest

from cli_inprocess import run_cli
from netlab.errors import TopologyError
from netlab.model import command_trust
from netlab.model.load import load_topology
from netlab.model.trust import DO

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the rule is root's")
NOBODY = pwd.getpwnam("nobody").pw_uid if os.geteuid() == 0 else 65534
FIELD = "pods[0].containers[1].command[0]"


def topology(folder, program: str) -> str:
    path = folder / "t.yaml"
    path.write_text(f"""name: setrust
nodes: [{{name: n1}}]
pods:
  - name: a
    node: n1
    containers:
      - {{name: echo}}
      - name: main
        command: [{program}, x]
""")
    os.chmod(path, 0o644)
    return str(path)


@pytest.fixture
def folder(tmp_path):
    os.chmod(tmp_path, 0o755)
    prog = tmp_path / "prog"
    prog.write_text("#!/bin/sh\nid -u > /tmp/se-rootproof\n")
    os.chmod(prog, 0o755)
    return tmp_path


@pytest.mark.parametrize("how, why", [
    ("owned by nobody", "it is owned by nobody (mode 755), not by root or you"),
    ("mode 777", "it is writable by everyone (mode 777)"),
    ("folder of nobody", "its folder {folder}/sub is owned by nobody (mode 755), not by root or you"),
    ("link of nobody", "the symlink {folder}/link on its way is owned by nobody, not by root or you"),
])
def test_a_command_program_someone_else_can_change_is_refused_at_its_line(folder, how, why):
    program = str(folder / "prog")
    if how == "owned by nobody":
        os.chown(program, NOBODY, -1)
    elif how == "mode 777":
        os.chmod(program, 0o777)
    elif how == "folder of nobody":
        (folder / "sub").mkdir(mode=0o755)
        program = str(folder / "sub" / "prog")
        os.rename(folder / "prog", program)
        os.chown(folder / "sub", NOBODY, -1)
    else:
        os.symlink(program, folder / "link")
        os.lchown(folder / "link", NOBODY, -1)
        program = str(folder / "link")
    path = topology(folder, program)
    with pytest.raises(TopologyError) as info:
        load_topology(path)
    text = str(info.value).strip()
    assert text == (f"{path}:9: {FIELD}: {program}: netlab runs as root and would run it as root, but "
                    f"{why.format(folder=folder)}; {DO}"), text


def test_roots_own_program_loads_and_so_does_the_sudo_users(folder, monkeypatch):
    assert load_topology(topology(folder, str(folder / "prog"))).name == "setrust"
    os.chown(folder / "prog", NOBODY, -1)
    monkeypatch.setenv("SUDO_UID", str(NOBODY))  # the invoking user's own program, as for a topology
    assert load_topology(topology(folder, str(folder / "prog"))).name == "setrust"


def test_a_relative_program_is_taken_from_slash_and_a_bare_name_from_the_containers_path(folder, monkeypatch):
    os.chmod(folder / "prog", 0o777)
    relative = os.path.relpath(folder / "prog", "/")  # what the container runs: its working directory is /
    with pytest.raises(TopologyError, match=f"{re.escape(FIELD)}: {relative}: .*it is writable by everyone"):
        load_topology(topology(folder, relative))
    monkeypatch.setattr(command_trust, "CONTAINER_PATH", f"/nonexistent:{folder}:/usr/bin")
    found = f"{re.escape(FIELD)}: prog \\(found at {folder}/prog\\): "
    with pytest.raises(TopologyError, match=found + ".*writable by everyone"):
        load_topology(topology(folder, "prog"))
    assert load_topology(topology(folder, "sh")).name == "setrust"  # /bin/sh: root's
    assert load_topology(topology(folder, "not-installed-here")).name == "setrust"  # up says it is not found


def test_validate_says_it_in_its_json(folder):
    os.chmod(folder / "prog", 0o777)
    path = topology(folder, str(folder / "prog"))
    proc = run_cli("validate", "-t", path, "-o", "json")
    doc = json.loads(proc.stdout)
    assert proc.returncode == 2 and doc["valid"] is False, proc.stdout + proc.stderr
    (problem,) = doc["problems"]
    assert (problem["file"], problem["line"], problem["field"]) == (path, 9, FIELD), problem
    assert "would run it as root, but it is writable by everyone (mode 777)" in problem["message"], problem
