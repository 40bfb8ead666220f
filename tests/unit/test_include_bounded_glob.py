"""An include glob is walked with a bound (QA rb61 1): a pattern of a dozen ``*/`` through a folder holding
symlinks to ``.`` made glob.glob list 3**12 folders before MAX_FILES applied (validate, plan and up hung over a
minute). A wildcard reaching a symlink loop, or a walk over the bounds, now refuses the pattern at its line.
An include naming a FIFO or a folder said "no such file" (QA rb61 6): it says what -t says of one."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from netlab.api.topology import load
from netlab.errors import TopologyError
from netlab.model import include_glob

TOPO = "name: inc\nnodes: [{name: n1}]\nnamespaces: [{name: x}]\ninclude: [PATTERN]\n"
POLICY = "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: p1, namespace: x}\n"


def problem(tmp_path: Path, pattern: str):
    (tmp_path / "topo.yaml").write_text(TOPO.replace("PATTERN", repr(pattern)))
    start = time.monotonic()
    with pytest.raises(TopologyError) as exc:
        load(str(tmp_path / "topo.yaml"), running=False)
    assert time.monotonic() - start < 5
    [p] = exc.value.problems
    assert (p.file, p.line, p.field) == (str(tmp_path / "topo.yaml"), 4, "include[0]"), p
    return p.message


def test_a_glob_through_symlinks_to_its_own_folder_is_refused_at_once(tmp_path):
    (tmp_path / "sub").mkdir()
    for name in ("l1", "l2", "l3"):
        os.symlink(".", tmp_path / "sub" / name)
    pattern = "sub/" + "*/" * 12 + "x.yaml"
    assert problem(tmp_path, pattern) == f"{pattern!r}: sub/l1 leads back to sub (a symlink loop); refused"


def test_a_symlink_back_to_the_topology_folder_is_a_loop_too(tmp_path):
    (tmp_path / "a").mkdir()
    os.symlink("..", tmp_path / "a" / "back")
    assert problem(tmp_path, "*/*/*/p.yaml") == ("'*/*/*/p.yaml': a/back leads back to its folder (a symlink loop); "
                                                  "refused")


def test_a_wide_tree_stops_at_the_bound(tmp_path, monkeypatch):
    monkeypatch.setattr(include_glob, "MAX_FOLDERS", 5)
    for i in range(8):
        (tmp_path / "pol" / f"d{i}").mkdir(parents=True)
    assert problem(tmp_path, "pol/*/*.yaml") == "'pol/*/*.yaml' searches over 5 folders; name a narrower pattern"


def test_symlinks_that_do_not_loop_still_match_as_glob_does(tmp_path):
    (tmp_path / "real" / "deep").mkdir(parents=True)
    (tmp_path / "real" / "deep" / "p.yaml").write_text(POLICY)
    (tmp_path / "real" / ".hidden.yaml").write_text(POLICY.replace("p1", "p2"))
    os.symlink("real", tmp_path / "alias")
    (tmp_path / "topo.yaml").write_text(TOPO.replace("PATTERN", repr("alias/*/*.yaml")))
    assert [p.name for p in load(str(tmp_path / "topo.yaml"), running=False).lab.topo.network_policies] == ["p1"]
    assert include_glob.walk(str(tmp_path), "real/*") == [str(tmp_path / "real" / "deep")]  # no dot-file


def test_an_include_naming_a_fifo_says_so(tmp_path):
    os.mkfifo(tmp_path / "pol.yaml")
    assert problem(tmp_path, "pol.yaml") == ("'pol.yaml' is not a regular file (a FIFO, device or socket); include "
                                             "names manifest files")


def test_an_include_naming_a_folder_says_so(tmp_path):
    (tmp_path / "pol").mkdir()
    assert problem(tmp_path, "pol") == ("'pol' is a directory; include names manifest files (a glob such as "
                                        "DIR/*.yaml takes a folder's)")
