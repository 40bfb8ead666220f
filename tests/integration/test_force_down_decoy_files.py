"""`down --force` of a lab whose state is corrupt takes the pods' files under /etc/netns that say they are the
lab's (their first line) once no namespace of the lab names them; it took too the hosts file of a namespace
that exists and is not the lab's (no netlab tag: someone's `ip netns add LAB-fedora-9`, its hosts file written by
hand with netlab's first line for the lab) (QA rb61 3). A namespace that exists without the lab's tag is not
the lab's: its files are left."""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest

from helpers import lab_down, netlab, state_path, unique_lab, write_topology

pytestmark = pytest.mark.root

TOPO = """name: {lab}
nodes: [{{name: n1}}]
network: {{mode: host-gw}}
pods: [{{name: web, node: n1}}]
"""


def test_force_down_leaves_the_files_of_a_namespace_that_exists_untagged(tmp_path):
    lab = unique_lab("rbfd")
    decoy = f"{lab}-fedora-9"
    folder = f"/etc/netns/{decoy}"
    netlab("up", "-t", write_topology(tmp_path, TOPO.format(lab=lab)))
    try:
        subprocess.run(["ip", "netns", "add", decoy], check=True)
        os.makedirs(folder)
        hosts = f"# netlab {lab}: written by hand\n127.0.0.1 localhost\n"
        with open(os.path.join(folder, "hosts"), "w") as f:
            f.write(hosts)
        ours = f"/etc/netns/{lab}-web/hosts"
        assert os.path.isfile(ours)
        with open(state_path(lab, "state.json"), "wb") as f:
            f.write(b"\x89PNG corrupt")
        down = netlab("down", "--lab", lab, "--force", "-o", "json")
        assert ours in json.loads(down.stdout)["removed_pod_files"], down.stdout
        assert os.path.join(folder, "hosts") not in down.stdout, down.stdout
        with open(os.path.join(folder, "hosts")) as f:
            assert f.read() == hosts
        assert not os.path.exists(ours)
        assert os.path.exists(f"/run/netns/{decoy}")
    finally:
        subprocess.run(["ip", "netns", "del", decoy], check=False)
        shutil.rmtree(folder, ignore_errors=True)
        lab_down(lab)
