"""A CNI plugin in a conflist's binDir that someone other than root and the invoking user can change (QA sec58
8): `validate` printed a bare `netlab: CNI plugin ...` line and `-o json` an error document (problems: [], file
and line null). It is a problem of the file, as the binDir's own refusal is: `FILE:LINE: network.cni.conflist:
CNI plugin PATH: ...` (the conflist names the plugin), and -o json is valid: false with that problem."""

from __future__ import annotations

import json
import os
import pwd
import shutil
from pathlib import Path

import pytest

from cli_inprocess import run_cli

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the rule is root's")
NOBODY = pwd.getpwnam("nobody").pw_uid
BASH = Path(__file__).parent.parent.parent / "examples" / "cni" / "bash-bridge"


@pytest.fixture
def lab(tmp_path):
    os.chmod(tmp_path, 0o755)
    (tmp_path / "bin").mkdir(mode=0o755)
    shutil.copy2(BASH / "bash-bridge", tmp_path / "bin" / "bash-bridge")
    shutil.copy2(BASH / "bash-bridge.conflist", tmp_path / "net.conflist")
    path = tmp_path / "t.yaml"
    path.write_text("name: sepl\nnetwork: {mode: host-gw, cni: {conflist: ./net.conflist, binDir: ./bin}}\n"
                    "nodes: [{name: n1}]\npods: [{name: p1, node: n1}]\n")
    return path


@pytest.mark.parametrize("how", ["owned by nobody", "a link of root's to nobody's file"])
def test_an_untrusted_plugin_in_bindir_is_a_located_problem(lab, how):
    plugin = lab.parent / "bin" / "bash-bridge"
    if how == "owned by nobody":
        os.chown(plugin, NOBODY, -1)
        why = "it is owned by nobody (mode 755), not by root or you"
    else:
        (lab.parent / "nob").mkdir(mode=0o755)
        os.rename(plugin, lab.parent / "nob" / "bash-bridge")
        os.chown(lab.parent / "nob" / "bash-bridge", NOBODY, -1)
        os.symlink(lab.parent / "nob" / "bash-bridge", plugin)
        why = "it is owned by nobody (mode 755), not by root or you"
    message = (f"CNI plugin {plugin}: netlab runs as root and would run it as root, but {why}; make it root's (or "
               "yours) and writable by no one else (chmod go-w), or copy it to a folder of yours")
    text = run_cli("validate", "-t", str(lab))
    assert (text.returncode, text.stdout) == (2, ""), text
    assert text.stderr.splitlines() == [f"{lab}:2: network.cni.conflist: {message}"], text.stderr
    doc = run_cli("validate", "-t", str(lab), "-o", "json")
    assert doc.returncode == 2, doc
    got = json.loads(doc.stdout)
    assert got["valid"] is False and got["problems"] == [
        {"file": str(lab), "line": 2, "field": "network.cni.conflist", "message": message}], got


def test_roots_own_plugin_validates(lab):
    proc = run_cli("validate", "-t", str(lab))
    assert proc.returncode == 0, proc.stderr
