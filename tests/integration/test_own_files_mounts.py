"""An output file never lands on a lab's own files through a bind mount of a folder inside the state folder.

``mount --bind /run/netlab/LAB /tmp/x`` makes ``/tmp/x/state.json`` the lab's state file under another name: no
path string and no folder above ``/tmp/x`` says so (``/tmp/x`` is the lab's folder, not the state folder, and
``/tmp`` is ``/tmp``). ``capture -w /tmp/x/state.json`` wrote a pcap over the state ("corrupt" until
``down --force``). The path is judged by what the mounts' table says ``/tmp/x`` shows, and refused: one line, exit 2.
"""

from __future__ import annotations

import os

import pytest

from helpers import STATE_ROOT, netlab
from private_mounts import PrivateMounts

pytestmark = pytest.mark.root


def test_a_bind_mount_of_a_labs_folder_does_not_let_an_output_file_over_its_files(labs, tmp_path):
    lab = labs.name("op")
    labs.up(f"name: {lab}\nnodes: [{{name: n1}}]\n"
            "pods: [{name: a, node: n1, labels: {app: a}}, {name: b, node: n1}]\n"
            "services: [{name: web, selector: {app: a}, ports: [{port: 80}]}]\n")  # a Service: pods get resolv.conf
    state = os.path.join(STATE_ROOT, lab, "state.json")
    before = open(state, "rb").read()
    resolv = f"/etc/netns/{lab}-a/resolv.conf"
    pod_file = open(resolv, "rb").read()
    lab_view, pod_view = tmp_path / "lab", tmp_path / "pod"
    lab_view.mkdir()
    pod_view.mkdir()
    ns = PrivateMounts(str(tmp_path))  # the bind mounts, and the commands that meet them (private_mounts.py)
    try:
        for source, view in ((os.path.dirname(state), lab_view), (os.path.dirname(resolv), pod_view)):
            ns.run("mount", "--bind", source, str(view))
        capture = ["capture", "--lab", lab, "n1:eth0", "-c", "1", "--timeout", "1"]
        for args in ([*capture, "-w", f"{lab_view}/state.json"],
                     ["graph", "--lab", lab, "-w", f"{lab_view}/new.dot"],
                     ["trace", "--lab", lab, "a", "b", "--pcap", f"{tmp_path}/../{tmp_path.name}/lab/state.json"],
                     ["probe", "--lab", lab, "--junit", f"{pod_view}/resolv.conf"]):
            proc = ns.netlab(*args, check=False)
            assert proc.returncode == 2, (args, proc.returncode, proc.stderr)
            assert len(proc.stderr.splitlines()) == 1 and "it is inside" in proc.stderr, (args, proc.stderr)
        assert sorted(os.listdir(ns.seen(str(lab_view)))) == sorted(os.listdir(os.path.dirname(state)))
        assert not os.path.exists(ns.seen(f"{lab_view}/new.dot"))
        # the folder a mount hides is not the mount: a file beside the views is written as usual
        assert ns.netlab("graph", "--lab", lab, "-w", f"{tmp_path}/ok.dot").returncode == 0
        assert os.path.exists(tmp_path / "ok.dot")
    finally:
        ns.close()  # the bind mounts go with the namespace
    assert open(state, "rb").read() == before and open(resolv, "rb").read() == pod_file
    assert netlab("status", "--lab", lab).returncode == 0
