"""A pod's /etc/netns/<lab>-<pod> folder that is a symlink (root; QA q47 3).

`up` rightly writes nothing through it and leaves it, yet `status` said both of the pod's files missing and named
`up` as the repair, exit 1, while `up` said "nothing to change": `up && status` failed for good. Now `status` says
what `up` says (the user's folder, left alone), a note, not drift: exit 0, `-o json` `repair` null.
"""

from __future__ import annotations

import json
import os
import shutil

import pytest

from helpers import netlab

pytestmark = pytest.mark.root


def _topology(lab: str) -> str:
    return (f"name: {lab}\nnodes: [{{name: n1}}]\npods:\n"
            "  - {name: web, node: n1, labels: {app: web}}\n  - {name: b, node: n1}\n"
            "services:\n  - {name: web, selector: {app: web}, ports: [{port: 80, targetPort: 8080}]}\n")


def test_status_takes_a_symlinked_pod_folder_as_up_does(labs, tmp_path):
    lab = labs.name("sf")
    path, _ = labs.up(_topology(lab))
    folder = f"/etc/netns/{lab}-web"
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    shutil.rmtree(folder)  # netlab's own folder of this test's lab, replaced by a person's symlink
    os.symlink(theirs, folder)
    try:
        up = netlab("up", "-t", path, check=False)
        assert up.returncode == 0 and os.listdir(theirs) == [], up
        line = f"{folder} is a symlink, not netlab's folder; left alone, so this pod"
        assert sum(line in said for said in up.stderr.splitlines()) == 2, up.stderr  # resolv.conf and hosts
        status = netlab("status", "--lab", lab, check=False)
        assert status.returncode == 0, status
        assert "missing" not in status.stdout + status.stderr and "to repair" not in status.stdout + status.stderr
        assert sum(line in said for said in (status.stdout + status.stderr).splitlines()) == 2, status
        doc = json.loads(netlab("status", "--lab", lab, "-o", "json", check=False).stdout)
        assert doc["repair"] is None, doc
    finally:
        os.unlink(folder)  # the test's symlink; down then has nothing of this pod's to take there
    assert os.listdir(theirs) == []


@pytest.mark.parametrize("up_between", [False, True])
def test_a_pod_folder_put_back_after_a_symlink_goes_with_down(labs, tmp_path, up_between):
    """QA q53 4: while the folder was a symlink `up` forgot it had made it; the real folder put back (netlab's
    files in it), every later `down` left it. Now it is netlab's again: `down` removes it (an `up` first too)."""
    lab = labs.name("rb")
    path, _ = labs.up(_topology(lab))
    folder = f"/etc/netns/{lab}-b"
    moved, theirs = tmp_path / "moved", tmp_path / "theirs"
    theirs.mkdir()
    os.rename(folder, moved)
    os.symlink(theirs, folder)
    try:
        up = netlab("up", "-t", path, check=False)
        assert up.returncode == 0 and f"{folder} is a symlink, not netlab's folder" in up.stderr, up
    finally:
        os.unlink(folder)
        os.rename(moved, folder)
    try:
        assert sorted(os.listdir(folder)) == ["hosts", "resolv.conf"]
        assert netlab("status", "--lab", lab, check=False).returncode == 0
        if up_between:
            netlab("up", "-t", path)
        netlab("down", "--lab", lab)
        assert not os.path.lexists(folder) and not os.path.lexists(f"/etc/netns/{lab}-web")
        assert os.listdir(theirs) == []
    finally:
        if os.path.isdir(folder) and not os.path.islink(folder):  # the test's own lab's, left (without the fix)
            shutil.rmtree(folder)
