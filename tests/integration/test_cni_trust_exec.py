"""The CNI plugins root runs are the files checked (QA qs2 2-3): a binDir reached through a link in a folder of
someone else's is refused before any plugin runs (VERSION included: validate, up's first step), and the plugin
executed is the resolved file, never the name found (so a link on the way swapped after the check changes
nothing). Root, real namespaces, examples/cni/bash-bridge behind a logging wrapper."""

from __future__ import annotations

import os
import pwd
import shutil
import uuid
from pathlib import Path

import pytest

from helpers import in_netns, ip_json, lab_namespaces, netlab, write_topology

pytestmark = pytest.mark.root

BASH = Path(__file__).parent.parent.parent / "examples" / "cni" / "bash-bridge"
WRAPPER = '#!/bin/sh\necho "$0 $CNI_COMMAND" >> {log}\nexec {impl} "$@"\n'


def test_a_bindir_through_someone_elses_folder_never_runs_and_the_resolved_plugin_does(labs, tmp_path):
    os.chmod(tmp_path, 0o755)
    lab = f"t2x{uuid.uuid4().hex[:5]}"
    labs.names.append(lab)
    real, log = tmp_path / "real", tmp_path / "calls"
    real.mkdir(mode=0o755)
    shutil.copy2(BASH / "bash-bridge", real / "impl")
    (real / "bash-bridge").write_text(WRAPPER.format(log=log, impl=real / "impl"))
    (real / "bash-bridge").chmod(0o755)
    shutil.copy2(BASH / "bash-bridge.conflist", tmp_path / "bash-bridge.conflist")
    nob = tmp_path / "nob"
    nob.mkdir(mode=0o755)
    os.chown(nob, pwd.getpwnam("nobody").pw_uid, -1)
    os.symlink(real, nob / "cur")  # nobody could point cur at a plugin of its own at any time
    os.symlink(nob / "cur", tmp_path / "bin")  # root's link, root's folder
    text = f"""name: {lab}
network: {{mode: host-gw, cni: {{conflist: ./bash-bridge.conflist, binDir: ./bin}}}}
nodes: [{{name: n1}}]
pods: [{{name: p1, node: n1}}, {{name: p2, node: n1}}]
"""
    path = write_topology(tmp_path, text, "topo.yaml")
    for command in ("validate", "up"):
        res = netlab(command, "-t", path, check=False)
        assert res.returncode == 2 and len(res.stderr.strip().splitlines()) == 1, res.stdout + res.stderr
        assert f"its folder {nob} is owned by nobody" in res.stderr and "Traceback" not in res.stderr, res.stderr
    assert not log.exists(), "a plugin ran as root: " + log.read_text()
    assert not lab_namespaces(lab)

    os.chown(nob, 0, -1)  # the same chain, all root's: it works, and what runs is the resolved file
    labs.up(text)
    calls = log.read_text().split("\n")[:-1]
    assert {c.split()[0] for c in calls} == {str(real / "bash-bridge")}, calls
    assert {"VERSION", "ADD"} <= {c.split()[1] for c in calls}, calls
    (p2,) = [a["local"] for a in ip_json("-4", "addr", "show", "eth0", netns=f"{lab}-p2")[0]["addr_info"]]
    assert in_netns(f"{lab}-p1", "ping", "-c1", "-W2", p2).returncode == 0
    netlab("down", "--lab", lab)
    assert not lab_namespaces(lab)
    assert f"{real / 'bash-bridge'} DEL" in log.read_text().split("\n")
