"""A file that is not a topology is never echoed; odd file names stay one line (issue 9, section 4).

Run as root, ``netlab validate -t /etc/shadow`` printed every line of the file
as an "unknown field" error: a YAML author's typo and a secret look the same
to the loader. A document whose top level has none of a topology's fields is
not a topology, and nothing of its content is shown: not its keys, its values,
its anchors or tags, nor the path of a syntax error inside it.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
from cli_inprocess import run_cli

from netlab.errors import TopologyError
from netlab.model.load import load_topology

SECRET = "S3cr3tV4lue"

NOT_TOPOLOGIES = {
    "shadow": "".join(f"user{i}:$6$salt{SECRET}{i}$hash{SECRET}:19000:0:99999:7:::\n" for i in range(5)),
    "credentials": f"password: {SECRET}\napi_key_{SECRET}: x\n",
    "syntax-error": f"token_{SECRET}:\n  - a\n b: [\n",
    "duplicate-keys": f"{SECRET}: a\n{SECRET}: b\n",
    "octal": f"key_{SECRET}: 0777\n",
    "anchor": f"a_{SECRET}: &anchor_{SECRET} x\n",
    "tag": f"a_{SECRET}: !tag_{SECRET} x\n",
    "deep": f"k_{SECRET}: " + "[" * 40 + "]" * 40 + "\n",
    "bad-key": f"{SECRET}: 1\n? [a, b]\n: c\n",
    "tag-first": f"!tag_{SECRET} a: x\n",
    "anchor-first": f"&anchor_{SECRET} a: x\n",
    "alias-first": f"*alias_{SECRET} : x\n",
}


def run_validate(path: str, *extra: str, how: str = "in-process") -> subprocess.CompletedProcess:
    """``netlab validate -t PATH``: through netlab.cli.main in this process, or as a separate process."""
    if how == "in-process":
        return run_cli("validate", "-t", path, *extra)
    return subprocess.run([sys.executable, "-m", "netlab", "validate", "-t", path, *extra],
                          capture_output=True, text=True, timeout=60)


# Every case in this process; a few again as a separate process, as a user runs netlab.
NOT_TOPOLOGY_RUNS = [(k, "in-process") for k in sorted(NOT_TOPOLOGIES)] + [("syntax-error", "process")]


@pytest.mark.parametrize("kind,how", NOT_TOPOLOGY_RUNS)
def test_a_file_that_is_not_a_topology_is_not_echoed(tmp_path, kind, how):
    path = tmp_path / "secrets.conf"
    path.write_text(NOT_TOPOLOGIES[kind])
    proc = run_validate(str(path), how=how)
    assert proc.returncode == 2, proc.stderr
    assert SECRET not in proc.stderr + proc.stdout, proc.stderr
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.splitlines()) == 1, proc.stderr
    with pytest.raises(TopologyError) as info:
        load_topology(str(path))
    assert SECRET not in str(info.value)


@pytest.mark.parametrize("text,said", [
    ("{{{\n", "1: topology: a key must be a plain string, not a list or mapping"),
    ("{\n", "2: yaml: YAML syntax error: did not find expected node content"),
])
def test_a_mistake_before_the_first_key_is_shown_not_called_another_file(tmp_path, text, said):
    """Nothing was read yet: not a topology's field, nor anyone else's; the mistake itself is shown."""
    path = tmp_path / "topo.yaml"
    path.write_text(text)
    proc = run_validate(str(path))
    assert proc.returncode == 2 and proc.stderr.startswith(f"{path}:{said}"), proc.stderr


def test_a_mistake_before_the_topology_fields_says_so_not_that_the_file_has_none(tmp_path):
    """`a: &x [1]` before name: and nodes: (an anchor, refused): the keys read before it are no topology's, so
    nothing is shown, but the file is not said to have no topology field at all (it has two)."""
    path = tmp_path / "topo.yaml"
    path.write_text("a: &x [1]\nname: x\nnodes: [{name: n1}]\n")
    proc = run_validate(str(path))
    assert proc.returncode == 2 and "none of the top-level keys read before its first problem is a topology " \
        "field" in proc.stderr, proc.stderr
    plain = tmp_path / "other.yaml"
    plain.write_text("a: 1\nb: 2\n")
    assert "none of its top-level keys is a topology field" in run_validate(str(plain)).stderr


def test_etc_shadow_is_not_echoed():
    if not os.access("/etc/shadow", os.R_OK):
        pytest.skip("/etc/shadow is not readable here (not root)")
    with open("/etc/shadow") as fh:
        lines = [line.rstrip("\n") for line in fh if line.strip()]
    proc = run_validate("/etc/shadow", how="process")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert len(proc.stderr.splitlines()) == 1, proc.stderr
    for line in lines:
        key = line.rsplit(":", 1)[0]
        assert key not in proc.stderr, "a line of /etc/shadow was printed"
        fields = line.split(":")
        if len(fields) > 1 and len(fields[1]) > 3:
            assert fields[1] not in proc.stderr, "a password hash was printed"


def test_a_topology_with_a_typo_still_gets_its_hint(tmp_path):
    path = tmp_path / "t.yaml"
    path.write_text("name: x\nnodez: []\nnodes: [{name: a}]\n")
    proc = run_validate(str(path))
    assert proc.returncode == 2 and "did you mean 'nodes'?" in proc.stderr


NAMES = ["new\nline.yaml", "tab\there.yaml", "esc\x1b[31mred.yaml", "cr\rreturn.yaml", "bell\x07.yaml",
         "rtl\u202eoverride.yaml", "quote\"d.yaml"]


# Every name in this process; one again as a separate process (argv and stderr through the OS).
NAME_RUNS = [(n, "in-process") for n in NAMES] + [(NAMES[0], "process")]


@pytest.mark.parametrize("name,how", NAME_RUNS, ids=[f"{n!r}-{how}" for n, how in NAME_RUNS])
def test_an_odd_file_name_is_quoted_and_stays_one_line(tmp_path, name, how):
    path = tmp_path / name
    path.write_text("name: x\nnodes: [{name: a, ip: 1.2.3}]\n")
    proc = run_validate(str(path), how=how)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, lines  # one problem, one line (the cross-checks wait for the ip: said after several)
    assert re.match(r'^".*":2: nodes\[0\]\.ip: ', lines[0]), lines[0]
    assert not any(c in lines[0] for c in "\n\r\t\x1b\x07\u202e")
    ok = tmp_path / ("ok-" + name)
    ok.write_text("name: x\nnodes: [{name: a}]\n")
    proc = run_validate(str(ok), how=how)
    assert proc.returncode == 0 and len(proc.stdout.splitlines()) == 1, proc.stdout
    missing = run_validate(str(tmp_path / ("missing-" + name)), how=how)
    assert missing.returncode == 2 and len(missing.stderr.splitlines()) == 1, missing.stderr
