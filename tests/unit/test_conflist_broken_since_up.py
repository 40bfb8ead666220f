"""A conflist lab whose conflist was broken after it came up (QA q42 2): `up --lab L` and `impair`, which run the
lab's saved topology, said the doctor's "FAIL tool CNI plugins: network.cni.conflist: ...", exit 3 (environment not
ready: the machine), where `up -t FILE` says validate's line, exit 2 (invalid input: the user's file). Both read
the conflist before the machine's checks now (api/lifecycle.check_conflist). Real CLI: tests/integration/
test_conflist_broken_live.py."""

from __future__ import annotations

import json

import pytest

from netlab import doctor
from netlab.api import lifecycle
from netlab.errors import TopologyError
from netlab.lab import up as lab_up
from netlab.model.lab import resolve
from netlab.model.load import load_topology

GOOD = {"cniVersion": "1.0.0", "name": "fzn", "plugins": [{"type": "bridge", "ipam": {"type": "host-local"}}]}


@pytest.mark.parametrize("broken", ["not json", '{"plugins": []}'])
def test_up_of_a_lab_whose_conflist_broke_since_says_validate_s_line_exit_2(tmp_path, monkeypatch, broken):
    conflist = tmp_path / "net.conflist"
    conflist.write_text(json.dumps(GOOD))
    path = tmp_path / "t.yaml"
    path.write_text("name: fzc1\nnetwork: {mode: host-gw, cni: {conflist: ./net.conflist}}\nnodes: [{name: n1}]\n"
                    "pods: [{name: a, node: n1}]\n")
    lab = resolve(load_topology(str(path)))  # as the lab's state saved it: the conflist's path made absolute
    conflist.write_text(broken)
    with pytest.raises(TopologyError) as validate:
        load_topology(str(path))

    def nothing(*args, **kw):
        raise AssertionError("the machine's checks or the up ran")

    monkeypatch.setattr(doctor, "required", nothing)
    monkeypatch.setattr(lab_up, "up", nothing)
    monkeypatch.setattr(lab_up, "up_held", nothing)
    for up in (lifecycle.up, lifecycle.up_held):  # up --lab, and impair (under the lab's lock): its source file
        with pytest.raises(TopologyError) as info:
            up(lab, source=str(path))
        assert str(info.value) == str(validate.value) and info.value.exit_code == 2
    assert str(info.value).startswith(f"{path}:2: network.cni.conflist: {conflist}: "), str(info.value)
    with pytest.raises(TopologyError) as info:  # a lab whose file is not known (a dict's): the lab named instead
        lifecycle.up(lab)
    assert str(info.value) == str(validate.value).replace(f"{path}:2:", "lab fzc1:")


@pytest.mark.parametrize("plugin", [None, "#!/bin/sh\necho boom >&2; exit 2\n",
                                    '#!/bin/sh\necho \'{"cniVersion":"0.4.0","supportedVersions":["0.4.0"]}\'\n'],
                         ids=["missing", "version-fails", "too-old"])
def test_up_of_a_lab_whose_own_plugin_does_not_answer_is_validate_s_line_exit_2(tmp_path, monkeypatch, plugin):
    """QA 61 1: a plugin of the user's own (in binDir) missing, failing VERSION or not speaking the list's
    cniVersion is the file's (validate: exit 2 at network.cni.conflist); up said the doctor's "FAIL tool CNI
    plugins" line, exit 3 (the machine's), with no file or line, and the pytest plugin skipped the test for it."""
    (tmp_path / "bin").mkdir()
    if plugin is not None:
        (tmp_path / "bin" / "my-cni").write_text(plugin)
        (tmp_path / "bin" / "my-cni").chmod(0o755)
    (tmp_path / "net.conflist").write_text(json.dumps({"cniVersion": "1.0.0", "name": "own",
                                                       "plugins": [{"type": "my-cni"}]}))
    path = tmp_path / "t.yaml"
    path.write_text("name: fzc2\nnetwork: {cni: {conflist: ./net.conflist, binDir: ./bin}}\nnodes: [{name: n1}]\n"
                    "pods: [{name: a, node: n1}]\n")
    lab = resolve(load_topology(str(path)))

    def nothing(*args, **kw):
        raise AssertionError("the machine's checks or the up ran")

    monkeypatch.setattr(doctor, "required", nothing)
    monkeypatch.setattr(lab_up, "up", nothing)
    monkeypatch.setattr(lab_up, "up_held", nothing)
    for up in (lifecycle.up, lifecycle.up_held):
        with pytest.raises(TopologyError) as info:
            up(lab, source=str(path))
        assert info.value.exit_code == 2 and len(info.value.problems) == 1
        problem = info.value.problems[0]
        assert (problem.file, problem.line, problem.field) == (str(path), 2, "network.cni.conflist"), problem
        assert "my-cni" in problem.message, problem.message
