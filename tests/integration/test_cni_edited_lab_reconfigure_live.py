"""A lab whose file was edited since its last up AND whose conflist was edited in place (its pods attached with the
old config): status named `up -t FILE --reconfigure`, which applies the file's edit too (here pod b, deleted from
the file since, would have been removed by that "repair"), and `up --lab NAME` took no --reconfigure. status names
`up --lab NAME --reconfigure` (its repair, its cni: line, its file-changed line), which re-attaches both pods with the
new conflist on the topology status compares with, and leaves the file's edit unapplied.

Root: Debian's bridge, host-local and loopback, through test_cni_edited_live's wrapper; checked with `ip -j` in the
pods' namespaces and the CNI log (what each plugin got on stdin)."""

from __future__ import annotations

import json

import pytest

from helpers import as_planned_here, lab_namespaces, netlab
from netlab.errors import netlab_command, netlab_words
from test_cni_edited_live import _conflist, _eth0, _markers, _topology, plugins_installed  # noqa: F401

pytestmark = pytest.mark.root


def test_a_lab_whose_file_and_conflist_were_both_edited_is_repaired_by_up_lab_reconfigure(labs, tmp_path):
    lab, conflist, text = _topology(labs, tmp_path, 1450, None, prefix="rv")
    path = labs.up_here(text)
    assert _eth0(lab, "b") == [(1450, ["10.244.0.3"])]

    with open(path) as fh:
        written = fh.read()
    b = "  - {name: b, node: n1, ip: 10.244.0.3}\n"
    assert b in written
    with open(path, "w") as fh:  # pod b deleted from the file: its `up -t FILE` removes b
        fh.write(written.replace(b, ""))
    conflist.write_text(_conflist(1300, "new"))  # in place: the same path

    status = netlab("status", "--lab", lab, check=False)
    repair = netlab_command(f"up --lab {lab} --reconfigure")
    assert status.returncode == 1, status
    assert status.stdout.splitlines()[-1] == f"run `{repair}` to repair", status.stdout
    assert f"cni: conflist {conflist} changed since pods a, b were attached with it" in status.stdout, status.stdout
    assert f"`{repair}` re-attaches them with the new one" in status.stdout, status.stdout
    assert f"changed since its last up: status compares the lab with what that up applied, which `{repair}` puts " \
           "back" in status.stdout + status.stderr, status
    assert json.loads(netlab("status", "--lab", lab, "-o", "json", check=False).stdout)["repair"] == repair

    before = len(_markers(lab, "b"))
    done = netlab(*netlab_words(repair) or [])  # the command status named
    assert f"re-attached pod b through CNI (conflist {conflist} changed since its ADD)" in done.stdout, done.stdout
    for pod, addr in (("a", "10.244.0.2"), ("b", "10.244.0.3")):
        assert _markers(lab, pod)[-2:] == [("DEL", None), ("ADD", "new")]  # DEL with the old config, ADD the new
        assert _eth0(lab, pod) == [(1300, [addr])]
    assert len(_markers(lab, "b")) == before + 2
    assert f"{lab}-b" in lab_namespaces(lab)  # the file's edit not applied: b stays
    assert as_planned_here(lab)
    again = netlab("status", "--lab", lab, check=False)
    assert again.returncode == 0, again
