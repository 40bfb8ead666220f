"""A terminal pod of a lab whose CNI plugins attach its pods, and what goes with its stopped sandbox (root).

1. Its files in /etc/netns/<namespace>/ (the kubelet's hosts file netlab writes for it, which ``ip netns exec``
   mounts over /etc there) stayed as long as the lab ran, after `up` removed the namespace with the sandbox. They
   go with it now, exactly those the lab's state records (a file someone put there stays, and its folder with it);
   the next `up` writes none again.
2. With its conflist edited since its ADD, a pod that has terminated is DELed by a plain `up` with the config its
   ADD used: `status` named that plain `up`, while the other commands' repair lines (here quiz's refusal of a lab
   that is not as planned) named `up -t FILE --reconfigure`. They name status's.
"""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from helpers import netlab
from netlab.errors import netlab_command
from netlab.model.naming import pod_file_marker
from test_cni_terminal_del_live import CONFLIST, TOPOLOGY, terminate
from test_terminal_hostport_live import SERVER

pytestmark = pytest.mark.root


def netns_list() -> set[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    return {line.split()[0] for line in out.splitlines() if line.strip()}


def test_a_terminal_pods_files_go_with_its_namespace_and_every_line_names_status_repair(labs, tmp_path):
    conflist = tmp_path / "tm.conflist"
    conflist.write_text(json.dumps(CONFLIST))
    server, go = tmp_path / "server.py", tmp_path / "go"
    server.write_text(SERVER)
    lab = labs.name("lf")
    one_pod = TOPOLOGY.split("  - {{name: b")[0]
    path, _ = labs.up(one_pod.format(lab=lab, cni="{conflist: tm.conflist}", server=server, go=go, host=""))
    folder = f"/etc/netns/{lab}-a"
    with open(f"{folder}/hosts") as f:
        assert f.readline().startswith(pod_file_marker(lab)), "netlab's hosts file of pod a"
    theirs = f"{folder}/notes"  # someone's file beside netlab's: not the lab's to take
    try:
        with open(theirs, "w") as f:
            f.write("mine\n")
        terminate(lab, go)
        edited = json.loads(json.dumps(CONFLIST))
        edited["plugins"][0]["hairpinMode"] = False
        conflist.write_text(json.dumps(edited))

        # 2: status's repair is the plain up (a terminal pod is DELed with its own config), and so is quiz's
        plain = netlab_command(f"up -t {path}")
        status = netlab("status", "--lab", lab, check=False)
        assert status.returncode == 1 and f"run `{plain}` to repair" in status.stdout, status.stdout
        quiz = netlab("quiz", "--lab", lab, check=False)
        assert quiz.returncode == 2 and quiz.stderr.rstrip().endswith(f"repair it first: {plain}"), quiz.stderr
        assert "--reconfigure" not in quiz.stderr, quiz.stderr

        # 1: up DELs its sandbox and removes its namespace: its recorded file goes with it, someone's stays
        up = netlab("up", "-t", path)
        assert "ran the CNI DEL of terminated pod a's sandbox" in up.stdout, up.stdout
        assert f"{lab}-a" not in netns_list()
        assert sorted(os.listdir(folder)) == ["notes"], os.listdir(folder)
        assert netlab("status", "--lab", lab).stdout.endswith("all as planned\n")
        netlab("up", "-t", path)  # none written again
        assert sorted(os.listdir(folder)) == ["notes"], os.listdir(folder)
        assert netlab("down", "--lab", lab).stderr == ""
        assert sorted(os.listdir(folder)) == ["notes"]
    finally:
        if os.path.exists(theirs):
            os.unlink(theirs)
        if os.path.isdir(folder) and not os.listdir(folder):
            os.rmdir(folder)
