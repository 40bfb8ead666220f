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
