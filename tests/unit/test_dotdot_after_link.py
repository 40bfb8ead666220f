"""QA q9 1: a ``..`` after a symlink goes to the parent of the folder the link leads to, as open(2) goes; both
walkers (netlab/outfile.py for an output file, netlab/model/trust.py for what root reads) dropped ``link/..`` as
text first: `graph -w DIR/a/link/../g.dot` said it wrote that name but wrote DIR/a/g.dot, and `validate -t
DIR/a/link/../t.yaml` of root's own topology said it was "not the file its name leads to now". Real folders and
symlinks in a tmp folder; what the kernel opens is the proof."""

from __future__ import annotations

import errno
import os
import pwd

import pytest
from cli_inprocess import run_cli

from netlab import outfile
from netlab.errors import UsageError
from netlab.model import pathwalk, trust

root_only = pytest.mark.skipif(os.geteuid() != 0, reason="needs root: another user's symlinks, root's trust rule")
NOBODY = pwd.getpwnam("nobody").pw_uid if os.geteuid() == 0 else 65534
TOPO = "name: sydotdot\nnodes: [{name: n1}]\npods: [{name: a, node: n1}]\n"


@pytest.fixture
def tree(tmp_path):
    """tmp/real/deep, tmp/a/link -> tmp/real/deep (absolute) and tmp/a/rel -> ../real/deep (relative)."""
    os.chmod(tmp_path, 0o755)
    (tmp_path / "real" / "deep").mkdir(parents=True)
    (tmp_path / "a").mkdir()
    os.symlink(tmp_path / "real" / "deep", tmp_path / "a" / "link")
    os.symlink("../real/deep", tmp_path / "a" / "rel")
    return tmp_path


@pytest.mark.parametrize("link", ["link", "rel"])
def test_an_output_name_with_dotdot_after_a_link_is_the_file_the_kernel_opens(tree, link, monkeypatch):
    name = str(tree / "a" / link / ".." / "o.bin")
    outfile.check(name)
    outfile.write_output(name, b"by netlab")
    assert (tree / "real" / "o.bin").read_bytes() == b"by netlab"
    assert not (tree / "a" / "o.bin").exists()
    with open(name, "rb") as fh:  # the kernel's walk of the same name
        assert fh.read() == b"by netlab"
    monkeypatch.chdir(tree / "a")  # a relative name: only the working folder is joined to it
    outfile.write_output(f"{link}/../../real/./deep/../r.bin", b"relative")
    assert (tree / "real" / "r.bin").read_bytes() == b"relative"


def test_graph_w_writes_the_name_it_says(tree):
    name = str(tree / "a" / "link" / ".." / "g.dot")
    proc = run_cli("graph", "-t", "topologies/default-2node.yaml", "-o", "dot", "-w", name)
    assert proc.returncode == 0, proc.stderr
    assert f"wrote {name}" in proc.stderr + proc.stdout
    with open(name) as fh:
        assert "digraph" in fh.read()
    assert (tree / "real" / "g.dot").exists() and not (tree / "a" / "g.dot").exists()


@root_only
def test_a_link_of_someone_else_before_dotdot_is_judged_not_skipped(tree):
    """nobody's link followed by `..`: nobody chose where that leads, so it is refused as at any other place
    (dropped as text, it was never looked at)."""
    os.symlink(tree / "real" / "deep", tree / "a" / "nob")
    os.lchown(tree / "a" / "nob", NOBODY, NOBODY)
    for write in (lambda: outfile.check(str(tree / "a" / "nob" / ".." / "x")),
                  lambda: outfile.write_output(str(tree / "a" / "nob" / ".." / "x"), b"x")):
        with pytest.raises(UsageError, match=r"it is a symlink \(through .*/a/nob\) owned by nobody"):
            write()
    assert not (tree / "a" / "x").exists() and not (tree / "real" / "x").exists()


@root_only
def test_a_topology_named_with_dotdot_after_a_link_is_read_and_judged_where_it_is(tree):
    from netlab.model.load import load_topology

    (tree / "real" / "t.yaml").write_text(TOPO)
    os.chmod(tree / "real" / "t.yaml", 0o644)
    name = str(tree / "a" / "link" / ".." / "t.yaml")
    assert trust.resolve(name) == (str(tree / "real" / "t.yaml"), None)
    assert trust.untrusted(name, os.stat(name)) is None
    assert load_topology(name).name == "sydotdot"
    proc = run_cli("validate", "-t", name)
    assert proc.returncode == 0, proc.stderr
    os.chown(tree / "real", NOBODY, -1)  # the folder the name leads to is someone else's: said, by its name
    assert trust.resolve(name)[1] == f"its folder {tree / 'real'} is owned by nobody (mode 755), not by root or you"
    proc = run_cli("validate", "-t", name)
    assert proc.returncode == 2 and f"its folder {tree / 'real'} is owned by nobody" in proc.stderr, proc.stderr


def test_trust_resolves_every_name_as_realpath(tree, monkeypatch):
    (tree / "real" / "f").write_text("")
    os.symlink("deep/..", tree / "real" / "up")  # a link whose own target ends in ..
    names = ["a/link/../f", "a/rel/../f", "a/rel/../deep/../../a/link/../f", "real/up/f", "a/./link/.././f"]
    for name in names:
        assert trust.resolve(str(tree / name))[0] == os.path.realpath(tree / name), name
    monkeypatch.chdir(tree / "a")
    assert trust.resolve("link/../f")[0] == str(tree / "real" / "f")


def test_the_names_are_walked_from_the_working_folder_and_links_counted(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    names = pathwalk.Names("x/../y")
    assert [names.pop() for _ in range(len(str(tmp_path).split("/")) - 1)] == str(tmp_path).split("/")[1:]
    assert [names.pop(), names.pop()] == ["x", ".."]
    assert names.follow("/abs/z") is True and names.pop() == "abs"
    assert names.follow("rel") is False and names.pop() == "rel"
    assert [names.pop(), names.pop()] == ["z", "y"] and not names
    for _ in range(pathwalk.MAX_LINKS - 2):
        names.follow("l")
    with pytest.raises(OSError) as exc:
        names.follow("l")
    assert exc.value.errno == errno.ELOOP
