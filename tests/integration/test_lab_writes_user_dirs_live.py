"""``up`` writes nothing through a lab's ``logs/`` bind-mounted from a user's folder, nor through a symlinked
``nodes/`` or ``cni/`` (root; what QA q47 1's fix left: only ``dns/`` was guarded).

Before, ``up`` moved a restarted container's log to the previous one in the user's folder and the new run wrote its
output there, the echo container of a pod added wrote its log there, the nodes' Flannel files were written through
the link, and host-local kept a new pod's lease in the user's folder. Now the user's folders keep every file byte
for byte: the containers run (their output going to /dev/null), ``up`` says each folder in one warning line and
exits 0; a CNI lab's ``up`` is refused before any change, in one line, exit 3.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import uuid

import pytest

from helpers import ip_json, lab_namespaces, netlab, state_path, wait_for, write_topology
from netlab.realize import lab_folder
from private_mounts import PrivateMounts

pytestmark = pytest.mark.root

CNI_BIN = "/usr/lib/cni"


def _files(folder) -> dict[str, bytes]:
    out = {}
    for base, dirs, files in os.walk(folder):
        for name in files + [d for d in dirs if os.path.islink(os.path.join(base, d))]:
            path = os.path.join(base, name)
            with open(path, "rb") as fh:
                out[os.path.relpath(path, folder)] = fh.read()
        out.update({os.path.relpath(os.path.join(base, d), folder) + "/": b"" for d in dirs})
    return out


def _user_folder(**files: str) -> str:
    folder = tempfile.mkdtemp(prefix="sg-", dir="/tmp")
    for name, text in files.items():
        with open(os.path.join(folder, name.replace("__", ".")), "w") as fh:
            fh.write(text)
    return folder


def _topology(lab: str, more: str = "") -> str:
    return (f"name: {lab}\nnodes: [{{name: n1}}]\npods:\n"
            "  - {name: b, node: n1, containers: [{name: main, command: [sh, -c, 'echo hi; exec sleep 600']}]}\n"
            + more)


def test_up_writes_no_log_nor_flannel_file_through_a_bind_mounted_logs_and_a_symlinked_nodes(labs, tmp_path):
    lab = labs.name("sg")
    # The bind mount, and the lab's commands, in a mount namespace of the test's (private_mounts.py); the lab too,
    # from its first up: the pod the second up adds has its UTS pin there, where the lab's echo server must meet it.
    ns = PrivateMounts(str(tmp_path))
    path = write_topology(tmp_path, _topology(lab))
    ns.netlab("up", "-t", path)
    logs, nodes = state_path(lab, "logs"), state_path(lab, "nodes")
    assert wait_for(lambda: os.path.exists(os.path.join(logs, "b.main.log")), timeout=10)
    mine = _user_folder(b__main__log="USER current\n", b__main__previous__log="USER previous\n", other="USER\n")
    theirs = _user_folder(notes="USER\n")
    before, before_theirs = _files(mine), _files(theirs)
    mounted = False
    try:
        state = json.load(open(state_path(lab, "state.json")))
        old = state["extra"]["workload"]["pods"]["b"]["containers"]["main"]["pid"]
        os.kill(old, signal.SIGKILL)  # the test's own container: up starts it again (a new run, its log moved)
        assert wait_for(lambda: not os.path.exists(f"/proc/{old}/cmdline") or
                        open(f"/proc/{old}/stat").read().split(") ")[1][0] == "Z", timeout=10)
        ns.run("mount", "--bind", mine, logs)
        mounted = True
        os.rename(nodes, nodes + ".moved")
        os.symlink(theirs, nodes)
        more = "  - {name: c, node: n1}\n"  # an echo container whose log would be a new file in the user's folder
        with open(path, "w") as fh:
            fh.write(_topology(lab, more))
        up = ns.netlab("up", "-t", path, check=False)
        assert up.returncode == 0, up
        assert _files(mine) == before, "up moved or wrote a log in the user's folder bind-mounted on logs/"
        assert _files(theirs) == before_theirs, "up wrote the Flannel files through the symlinked nodes/"
        lines = up.stderr.splitlines()
        assert (f"netlab: warning: logs: {logs}: {lab_folder.ON_A_MOUNT}; the containers' logs are not written "
                "there (their output goes to /dev/null)") in lines, up.stderr
        assert (f"netlab: warning: flannel: {nodes}: {lab_folder.A_SYMLINK}; node n1's Flannel files (subnet.env, "
                "the CNI config) are not written there (left alone)") in lines, up.stderr
        state = json.load(open(state_path(lab, "state.json")))
        new = state["extra"]["workload"]["pods"]["b"]["containers"]["main"]["pid"]
        assert new != old and os.readlink(f"/proc/{new}/fd/1") == "/dev/null"  # it runs, its output nowhere
        assert ip_json("-4", "addr", "show", "dev", "eth0", netns=f"{lab}-c")  # the added pod is up
    finally:
        try:
            unmounted = not mounted or subprocess.run(ns.argv(["umount", logs])).returncode == 0
            if os.path.islink(nodes):
                os.unlink(nodes)
                os.rename(nodes + ".moved", nodes)
            ns.netlab("down", "--lab", lab, check=False)
            if not unmounted:  # busy: a container wrote its log there (without the fix); down stopped it
                ns.run("umount", logs)
                shutil.rmtree(state_path(lab))  # the test's own lab folder, which down left with the mount
            assert _files(mine) == before and _files(theirs) == before_theirs
        finally:
            ns.close()  # the namespace goes with its mounts once the containers the up started there are down
            shutil.rmtree(mine)
            shutil.rmtree(theirs)
    assert lab_namespaces(lab) == []


def test_a_restarted_container_whose_log_file_is_a_bind_mount_starts_with_its_output_to_dev_null(labs, tmp_path):
    """QA q53 3: a user's file bind-mounted on ``logs/b.main.log``; before, the restart's rename of it was EBUSY and
    the container did not start ("its log ... cannot become the previous one", exit 1, get pods RunContainerError).
    """
    lab = labs.name("rb")
    path, _ = labs.up(_topology(lab))
    log = state_path(lab, "logs", "b.main.log")
    assert wait_for(lambda: os.path.exists(log), timeout=10)
    mine = tmp_path / "user.log"
    mine.write_text("USER log\n")
    ns = PrivateMounts(log)  # the bind mount, and the up that meets it (private_mounts.py)
    ns.run("mount", "--bind", str(mine), log)
    try:
        state = json.load(open(state_path(lab, "state.json")))
        old = state["extra"]["workload"]["pods"]["b"]["containers"]["main"]["pid"]
        os.kill(old, signal.SIGKILL)  # the test's own container: up starts it again
        assert wait_for(lambda: not os.path.exists(f"/proc/{old}/cmdline") or
                        open(f"/proc/{old}/stat").read().split(") ")[1][0] == "Z", timeout=10)
        up = ns.netlab("up", "-t", path, check=False)
        assert (up.returncode, up.stderr.splitlines()) == (0, [
            f"netlab: warning: pod b container main: its log {log} is a mount point (a bind mount of a user's file), "
            "not netlab's: left alone, nothing moved nor written in it; the container's output goes to /dev/null"])
        new = json.load(open(state_path(lab, "state.json")))["extra"]["workload"]["pods"]["b"]["containers"]["main"]
        assert new["pid"] != old and "error" not in new and os.readlink(f"/proc/{new['pid']}/fd/1") == "/dev/null"
        assert " Running " in netlab("get", "pods", "--lab", lab).stdout
        assert not os.path.exists(state_path(lab, "logs", "b.main.previous.log"))
        assert mine.read_text() == "USER log\n"
    finally:
        ns.run("umount", log)
        netlab("down", "--lab", lab, check=False)
        ns.close()  # the namespace goes with the containers the up started there
    assert mine.read_text() == "USER log\n" and lab_namespaces(lab) == [] and not os.path.exists(state_path(lab))


def test_an_up_of_a_cni_lab_with_a_symlinked_cni_folder_is_refused_before_any_change(labs, tmp_path):
    assert os.access(f"{CNI_BIN}/bridge", os.X_OK), "containernetworking-plugins missing: run scripts/setup.sh"
    network = f"sg{uuid.uuid4().hex[:8]}"
    (tmp_path / "net.conflist").write_text(json.dumps({"cniVersion": "1.0.0", "name": network, "plugins": [
        {"type": "bridge", "bridge": "sgbr0", "isGateway": True, "ipam": {"type": "host-local"},
         "capabilities": {"ipRanges": True}}]}))
    lab = labs.name("sg")
    head = f"name: {lab}\nnetwork: {{mode: host-gw, cni: {{conflist: ./net.conflist, binDir: {CNI_BIN}}}}}\n"
    path, _ = labs.up(head + "nodes: [{name: n1}]\npods:\n  - {name: a, node: n1}\n")
    cni = state_path(lab, "cni")
    theirs = _user_folder(notes="USER\n")
    before = _files(theirs)
    try:
        os.rename(cni, cni + ".moved")
        os.symlink(theirs, cni)
        with open(path, "w") as fh:  # a pod more: host-local would keep its lease below cni/
            fh.write(head + "nodes: [{name: n1}]\npods:\n  - {name: a, node: n1}\n  - {name: b, node: n1}\n")
        up = netlab("up", "-t", path, check=False)
        assert up.returncode == 3, up
        assert up.stderr.splitlines() == [
            f"netlab: lab {lab}: {cni}: {lab_folder.A_SYMLINK}; up writes nothing through it (the CNI plugins "
            "keep their leases and results below the lab's cni/): move it away, then run up again"], up.stderr
        assert _files(theirs) == before, "up wrote through the symlinked cni/"
        assert f"{lab}-b" not in lab_namespaces(lab)  # nothing changed
    finally:
        if os.path.islink(cni):
            os.unlink(cni)
            os.rename(cni + ".moved", cni)
        try:
            netlab("down", "--lab", lab, check=False)
            assert _files(theirs) == before
        finally:
            shutil.rmtree(theirs)
    assert lab_namespaces(lab) == []
