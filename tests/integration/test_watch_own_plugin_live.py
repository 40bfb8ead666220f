"""``up --watch`` of an edited file that names a CNI plugin of the user's own (binDir) whose VERSION fails (root;
cn61): the watcher said the doctor's machine line (``FAIL tool CNI plugins``), where plain ``up`` of the same file
says ``validate``'s line at network.cni.conflist (exit 2). Its line now says that very line, as a file that is not
valid, and the lab is kept as it was."""

from __future__ import annotations

import json

import pytest

from helpers import lab_namespaces, netlab, unique_lab, write_topology
from watching import topology, watching

pytestmark = pytest.mark.root


def test_the_watcher_says_plain_ups_line_for_an_own_plugin_failing_version(tmp_path):
    name = unique_lab("wpv")
    path = write_topology(tmp_path, topology(name))
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "my-cni").write_text("#!/bin/sh\necho 'my-cni: boom' >&2\nexit 2\n")
    (tmp_path / "bin" / "my-cni").chmod(0o755)
    (tmp_path / "net.conflist").write_text(json.dumps({"cniVersion": "1.0.0", "name": "own",
                                                       "plugins": [{"type": "my-cni"}]}))
    edited = topology(name).replace("nodes:\n", "network: {cni: {conflist: ./net.conflist, binDir: ./bin}}\nnodes:\n")
    with watching(name) as start:
        watcher = start(path)
        before = sorted(lab_namespaces(name))
        mark = len(watcher.lines)
        with open(path, "w") as fh:
            fh.write(edited)
        line = watcher.wait_for_line(f"saw: {path} changed; did: ", after=mark, timeout=20)
        plain = netlab("up", "-t", path, check=False)  # what plain up of that file says (nothing changed)
        assert plain.returncode == 2, plain
        [said] = [x.removeprefix("netlab: ") for x in plain.stderr.splitlines() if "my-cni" in x]
        assert f"{path}:2: network.cni.conflist: " in said and "my-cni: boom" in said, plain.stderr
        assert line.endswith(f"did: nothing, it is not valid ({said})"), (line, said)
        assert "FAIL" not in line and "tool CNI plugins" not in line, line
        assert sorted(lab_namespaces(name)) == before  # the lab as it was
