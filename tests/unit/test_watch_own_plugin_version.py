"""``up --watch`` of an edited file whose CNI plugin of the user's own (binDir) fails VERSION (cn61): the watcher
said the doctor's line (``FAIL tool CNI plugins``: the machine's problem), where plain ``up`` of the same file says
``validate``'s line at network.cni.conflist, exit 2 (api/lifecycle.check_conflist). It now says that line, as a file
that is not valid, and applies nothing; the machine's checks are not asked."""

from __future__ import annotations

import json

import pytest

from netlab.api import lifecycle
from netlab.errors import EnvironmentNotReady, TopologyError
from netlab.model.lab import resolve
from netlab.model.load import load_topology
from netlab.realize.state import load_state
from test_watch_lock import LAB, watched

BROKEN = "#!/bin/sh\necho boom >&2; exit 2\n"


def test_an_edit_naming_an_own_plugin_that_fails_version_is_said_as_plain_up_says_it(state_root, tmp_path,
                                                                                    monkeypatch):
    path = tmp_path / "t.yaml"
    w, lines = watched(path, monkeypatch)

    def machine(lab, moot=()):  # the doctor's line, as a real machine gives it for that plugin
        if lab.cni != "builtin" and "cni-plugins" not in moot:
            raise EnvironmentNotReady("FAIL  tool CNI plugins: my-cni fails VERSION (the machine's)")
        raise AssertionError("the edit was applied")

    monkeypatch.setattr("netlab.doctor.required", machine)
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "my-cni").write_text(BROKEN)
    (tmp_path / "bin" / "my-cni").chmod(0o755)
    (tmp_path / "net.conflist").write_text(json.dumps({"cniVersion": "1.0.0", "name": "own",
                                                       "plugins": [{"type": "my-cni"}]}))
    text = path.read_text().replace("nodes:\n", "network: {cni: {conflist: ./net.conflist, binDir: ./bin}}\nnodes:\n")
    path.write_text(text)
    with pytest.raises(TopologyError) as plain:  # what plain up of that file says (exit 2)
        lifecycle.up(resolve(load_topology(str(path))), source=str(path))
    assert plain.value.exit_code == 2
    w._file_changed()
    assert lines == [f"saw: {path} changed; did: nothing, it is not valid ({str(plain.value).splitlines()[0]})"], \
        lines
    assert f"{path}:2: network.cni.conflist: " in lines[0] and "my-cni" in lines[0], lines
    state = load_state(LAB)
    assert state is not None and state.topology.get("network", {}).get("cni") in (None, "builtin")  # nothing applied
