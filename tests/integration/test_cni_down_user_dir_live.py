"""``down`` of a CNI lab whose ``cni/`` is a user's (a folder of theirs bind-mounted on it, or a symlink to one), put
there after ``up`` (which refuses such a lab): the namespaces go, and nothing is written nor removed through it.

Before, ``down`` ran the plugins' DEL with host-local's dataDir inside it (host-local's DEL made its folder and
lock file there) and appended the CNI call log to it; with a symlink, ``down`` failed on it. Now the DEL hands
host-local an empty folder of netlab's as its dataDir (the leases stay where they are, the user's), reads no cached
result from it (the state's record gives the config), writes no call log, and says it in one warning line (root).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import uuid

import pytest

from helpers import lab_namespaces, netlab, state_path
from netlab.realize import lab_folder
from private_mounts import PrivateMounts

pytestmark = pytest.mark.root

CNI_BIN = "/usr/lib/cni"


def _files(folder) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    for base, dirs, files in os.walk(folder):
        for name in files:
            with open(os.path.join(base, name), "rb") as fh:
                out[os.path.relpath(os.path.join(base, name), folder)] = fh.read()
        out.update({os.path.relpath(os.path.join(base, d), folder) + "/": b"" for d in dirs})
    return out


@pytest.mark.parametrize("how", ["bind mount", "symlink"])
def test_down_of_a_cni_lab_whose_cni_folder_is_a_users_writes_nothing_there(labs, tmp_path, how):
    assert os.access(f"{CNI_BIN}/bridge", os.X_OK), "containernetworking-plugins missing: run scripts/setup.sh"
    network = f"dg{uuid.uuid4().hex[:8]}"
    (tmp_path / "net.conflist").write_text(json.dumps({"cniVersion": "1.0.0", "name": network, "plugins": [
        {"type": "bridge", "bridge": "dgbr0", "isGateway": True, "ipMasq": True, "ipam": {"type": "host-local"},
         "capabilities": {"ipRanges": True}}]}))
    lab = labs.name("dg")
    head = f"name: {lab}\nnetwork: {{mode: host-gw, cni: {{conflist: ./net.conflist, binDir: {CNI_BIN}}}}}\n"
    labs.up(head + "nodes: [{name: n1}]\npods:\n  - {name: a, node: n1}\n  - {name: b, node: n1}\n")
    cni = state_path(lab, "cni")
    assert os.path.isdir(os.path.join(cni, "networks"))  # host-local's leases, where netlab hands them
    theirs = tempfile.mkdtemp(prefix="dg-", dir="/tmp")
    with open(os.path.join(theirs, "notes"), "w") as fh:
        fh.write("USER\n")
    before = _files(theirs)
    mounted = how == "bind mount"
    # the bind mount, and the down that meets it, in a mount namespace of the test's (private_mounts.py)
    ns = PrivateMounts(cni) if mounted else None
    try:
        if ns is not None:
            ns.run("mount", "--bind", theirs, cni)
        else:
            os.rename(cni, cni + ".moved")
            os.symlink(theirs, cni)
        down = (ns.netlab if ns is not None else netlab)("down", "--lab", lab, check=False)
        assert down.returncode == 0, down
        assert _files(theirs) == before, "down wrote through the user's cni/"
        why = lab_folder.ON_A_MOUNT if mounted else lab_folder.A_SYMLINK
        assert (f"netlab: warning: cni: {cni}: {why}; down ran the plugins' DEL without host-local's leases in it "
                "(the lab's pods' addresses are left leased there, yours to remove) and wrote no CNI call log "
                "there") in down.stderr.splitlines(), down.stderr
        assert lab_namespaces(lab) == []
    finally:
        try:
            if ns is not None:
                ns.close()  # the bind mount goes with the namespace
            elif os.path.islink(cni):
                os.unlink(cni)
                os.rename(cni + ".moved", cni)
            netlab("down", "--lab", lab, check=False)
            if os.path.isdir(state_path(lab)) and lab_namespaces(lab) == []:
                shutil.rmtree(state_path(lab))  # the test's own lab folder, which down left with the user's in it
        finally:
            shutil.rmtree(theirs)
    assert lab_namespaces(lab) == []
