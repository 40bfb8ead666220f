"""Which lab `netlab up` acts on without -t FILE: --lab NAME, else $NETLAB_LAB, else the only lab up (what `netlab
break` broke, whose repair is taught as plain `sudo netlab up`), else the built-in default lab 'demo' (no lab up,
or 'demo' up: `up` on a fresh machine). A plain `up` with $NETLAB_LAB set built 'demo' and left the lab it named
broken. And the refusal of another file with a running lab's name names that file in the command it says.

No root: the labs are saved states in a private state directory, and `Lab.up_loaded` is replaced by one that
records what it was given. The real thing, on a real lab: tests/integration/test_up_lab_select.py."""

from __future__ import annotations

import json
import types

import pytest
from cli_inprocess import run_cli

from helpers import two_node_topology
from netlab.api import results as R
from netlab.api.topology import load
from netlab.errors import UsageError, netlab_command
from netlab.realize.state import LabState, check_source

DEFAULT = "demo"  # the built-in default topology's name


@pytest.fixture
def applied(state_root, monkeypatch):
    """What `up` applied, one (lab, origin, source) each run; nothing touches the kernel."""
    monkeypatch.delenv("NETLAB_LAB", raising=False)
    monkeypatch.setattr("netlab.cli.lab.require_root", lambda: None)
    runs: list[tuple[str, str, str | None]] = []

    def up_loaded(cls, loaded, **kw):
        runs.append((loaded.lab.name, loaded.origin, loaded.source))
        result = R.UpResult(lab=loaded.lab.name, changed=False, created_netns=(), removed_netns=(), fixed=(),
                            operations=0, warnings=(), failed=())
        return types.SimpleNamespace(last_up=result, model=loaded.lab, owned=False)

    def watch(source, lab_name, *args, saved=False, **kw):  # never the real watcher: it would bring the lab up here
        runs.append((lab_name, "watched its saved topology" if saved else "watched", source))

    monkeypatch.setattr("netlab.api.Lab.up_loaded", classmethod(up_loaded))
    monkeypatch.setattr("netlab.api.watch.watch", watch)
    return runs


def running(tmp_path, name: str, from_file: bool = True) -> str | None:
    """Save the state of lab ``name`` that is up, from a file of its own (its path), or the built-in default."""
    path = None
    if from_file:
        path = tmp_path / f"{name}.yaml"
        path.write_text(two_node_topology(name))
    loaded = load(None if path is None else str(path), None if path is not None else name)
    LabState(lab=name, topology=loaded.lab.topo.model_dump(mode="json", by_alias=True, exclude_none=True),
             source=None if path is None else str(path), phase="up").save()
    return None if path is None else str(path)


def test_netlab_lab_names_the_lab_a_plain_up_repairs(applied, tmp_path, monkeypatch):
    """The defect: `up` with $NETLAB_LAB set made the built-in lab 'demo' (exit 0) beside the broken lab."""
    running(tmp_path, "qx1a")
    running(tmp_path, "qx1b")
    monkeypatch.setenv("NETLAB_LAB", "qx1a")
    got = run_cli("up")
    assert got.returncode == 0 and got.stderr == "", got
    assert applied == [("qx1a", "lab qx1a's saved topology", str(tmp_path / "qx1a.yaml"))]
    assert got.stdout == "lab qx1a is up and matches its topology; nothing to change\n"
    # --lab on the command line wins over $NETLAB_LAB, and -t FILE picks the lab instead of either
    assert run_cli("up", "--lab", "qx1b").returncode == 0 and applied[-1][0] == "qx1b"
    file = tmp_path / "other.yaml"
    file.write_text(two_node_topology("qx1c"))
    assert run_cli("up", "-t", str(file)).returncode == 0 and applied[-1] == ("qx1c", str(file), str(file))


@pytest.mark.parametrize("env", [True, False])
def test_a_lab_that_is_not_up_is_refused_in_one_line(applied, tmp_path, monkeypatch, env):
    running(tmp_path, "qx1a")
    if env:
        monkeypatch.setenv("NETLAB_LAB", "qx1z")
    got = run_cli("up") if env else run_cli("up", "--lab", "qx1z")
    named = " (named by $NETLAB_LAB)" if env else ""
    assert got.returncode == 2 and got.stdout == "" and applied == [], got
    assert got.stderr == (f"netlab: lab 'qx1z'{named} is not up (labs up: qx1a); `{netlab_command('up -t FILE')}` "
                          "brings it up from a file\n")


@pytest.mark.parametrize("args", [(), ("--watch",)])
def test_netlab_lab_is_checked_as_a_name(applied, monkeypatch, args):
    """Before it is used, or said in a message (a newline in it would start a second line)."""
    monkeypatch.setenv("NETLAB_LAB", "../e\ntc")
    got = run_cli("up", *args)
    assert got.returncode == 2 and got.stderr.startswith("netlab: $NETLAB_LAB ") and applied == [], got
    assert got.stderr.count("\n") == 1, got


def test_the_built_in_lab_by_name_is_made_when_it_is_not_up(applied, tmp_path, monkeypatch):
    """`up --lab demo` ($NETLAB_LAB=demo): the built-in default lab, as plain `up` makes it, when it is not up; the
    way to make it beside another lab, which a plain `up` now repairs."""
    running(tmp_path, "qx1a")
    monkeypatch.setenv("NETLAB_LAB", DEFAULT)
    assert run_cli("up").returncode == 0 and applied == [(DEFAULT, "built-in default", None)]


def test_a_plain_up_makes_or_converges_the_built_in_lab_as_before(applied, tmp_path):
    """No lab up: the README's first command makes 'demo'; 'demo' up (beside others too): converged from the
    built-in default as before (its impairments set back to the file's, unlike --lab)."""
    assert run_cli("up").returncode == 0
    running(tmp_path, DEFAULT, from_file=False)
    running(tmp_path, "qx1a")
    got = run_cli("up")
    assert got.returncode == 0 and got.stdout.startswith(f"lab {DEFAULT} is up"), got
    assert applied == [(DEFAULT, "built-in default", None)] * 2


def test_a_plain_up_repairs_the_only_lab_up_and_says_so(applied, tmp_path):
    """README: with neither --lab nor $NETLAB_LAB, a command acts on the only lab up; `break` teaches `sudo netlab
    up` as the repair. The line says which lab, and how to make the built-in one instead."""
    source = running(tmp_path, "qx1a")
    got = run_cli("up")
    assert got.returncode == 0 and got.stderr == "", got
    assert applied == [("qx1a", "lab qx1a's saved topology", source)]
    assert got.stdout.splitlines()[0] == ("no -t FILE nor --lab: lab qx1a, the only lab up, converges to its saved "
                                          f"topology (`{netlab_command(f'up --lab {DEFAULT}')}` makes the built-in "
                                          "default lab)")
    js = run_cli("up", "-o", "json")  # one JSON document: the line is the text's only
    assert js.returncode == 0 and json.loads(js.stdout)["lab"] == "qx1a", js


def test_a_plain_up_with_several_other_labs_up_is_refused_saying_what_to_type(applied, tmp_path):
    running(tmp_path, "qx1a")
    running(tmp_path, "qx1b")
    got = run_cli("up")
    assert got.returncode == 2 and got.stdout == "" and applied == [], got
    assert got.stderr == ("netlab: several labs are up (qx1a, qx1b); repair one with "
                          f"`{netlab_command('up --lab NAME')}`, or make the built-in default lab with "
                          f"`{netlab_command(f'up --lab {DEFAULT}')}`\n")


def test_reconfigure_of_a_lab_named_converges_its_saved_topology_and_re_attaches(applied, tmp_path, monkeypatch):
    """`up --lab L --reconfigure` (or $NETLAB_LAB=L): lab L's saved topology with --reconfigure (the pods attached
    with a conflist edited since re-attached), where it was refused ("it takes no --reconfigure") and `status` of a
    lab whose file was edited since named `up -t FILE --reconfigure`, which applies the edit too. Without a lab
    named, the built-in default as before (also beside another lab). Not with -t FILE."""
    import netlab.api

    path = running(tmp_path, "qx1a")
    given: list[bool] = []
    real = netlab.api.Lab.up_loaded

    def up_loaded(loaded, **kw):
        given.append(kw.get("reconfigure", False))
        return real(loaded, **kw)

    monkeypatch.setattr("netlab.api.Lab.up_loaded", up_loaded)
    assert run_cli("up", "--lab", "qx1a", "--reconfigure").returncode == 0
    monkeypatch.setenv("NETLAB_LAB", "qx1a")
    assert run_cli("up", "--reconfigure").returncode == 0
    monkeypatch.delenv("NETLAB_LAB")
    assert run_cli("up", "--reconfigure").returncode == 0
    assert applied == [("qx1a", "lab qx1a's saved topology", path)] * 2 + [(DEFAULT, "built-in default", None)]
    assert given == [True, True, True]
    got = run_cli("up", "--lab", "qx1a", "-t", str(path), "--reconfigure")
    assert got.returncode == 2 and got.stderr == ("netlab: --lab NAME converges a running lab to its own saved "
                                                  "topology: it takes no -t FILE (give -t FILE to apply a file)\n"), got
    helped = run_cli("up", "--help").stdout
    assert "With -t FILE or --lab NAME: re-attach the CNI pods" in " ".join(helped.split()), helped


# `up --watch` picks its lab as plain `up` does (README: "`netlab up --watch`" with no file; "plain `up` acts on
# the lab $NETLAB_LAB names"). `--watch --lab L` and $NETLAB_LAB were refused (exit 2), and a lab made from a dict
# could not be watched at all. A running lab picked by name, or as the only one up, is watched as its saved
# topology: no file is followed (its own file would put back what `netlab impair` changed), `source` None.

@pytest.mark.parametrize("from_file", [True, False], ids=["file", "dict"])
@pytest.mark.parametrize("how", ["--lab", "env", "only"])
def test_watch_picks_the_lab_plain_up_picks(applied, tmp_path, monkeypatch, how, from_file):
    running(tmp_path, "qx1a", from_file)
    if how != "only":
        running(tmp_path, "qx1b")  # another lab up: the name picks
    if how == "env":
        monkeypatch.setenv("NETLAB_LAB", "qx1a")
    got = run_cli("up", "--watch", *(("--lab", "qx1a") if how == "--lab" else ()))
    assert got.returncode == 0 and got.stderr == "", got
    assert applied == [("qx1a", "watched its saved topology", None)]
    said = got.stdout.splitlines()
    assert said == ([] if how != "only" else [
        "no -t FILE nor --lab: lab qx1a, the only lab up, converges to its saved topology "
        f"(`{netlab_command(f'up --lab {DEFAULT}')}` makes the built-in default lab)"]), got


def test_watch_of_a_file_or_the_built_in_lab_follows_it_as_before(applied, tmp_path, monkeypatch):
    assert run_cli("up", "--watch").returncode == 0  # no lab up: the built-in default, made then watched
    assert run_cli("up", "--watch", "--lab", DEFAULT).returncode == 0  # 'demo' not up: made as a plain `up` does
    source = running(tmp_path, "qx1a")
    assert run_cli("up", "--watch", "-t", str(source)).returncode == 0  # its file, re-read when it changes
    assert applied == [(DEFAULT, "watched", None), (DEFAULT, "watched", None), ("qx1a", "watched", source)]


@pytest.mark.parametrize("given, said", [
    (["--lab", "qx1z"], "netlab: lab 'qx1z' is not up (labs up: qx1a, qx1b); `{up FILE}` brings it up "
                        "from a file"),
    ([], "netlab: several labs are up (qx1a, qx1b); repair one with `{up NAME}`, or make the "
         "built-in default lab with `{up default}`"),
    (["--lab", "qx1a", "--reconfigure"], "netlab: --watch takes no --reconfigure: run `{up reconfigure}` first, "
                                         "then --watch"),
])
def test_watch_is_refused_where_plain_up_is(applied, tmp_path, given, said):
    running(tmp_path, "qx1a")
    running(tmp_path, "qx1b")
    got = run_cli("up", "--watch", *given)
    # its commands name the test's state folder, set once the fixtures ran (errors.netlab_command)
    said = said.replace("{up NAME}", netlab_command("up --lab NAME")).replace(
        "{up default}", netlab_command(f"up --lab {DEFAULT}")).replace("{up FILE}", netlab_command("up -t FILE")).replace(
        "{up reconfigure}", netlab_command("up --lab qx1a --reconfigure"))
    assert got.returncode == 2 and got.stdout == "" and got.stderr == said + "\n" and applied == [], got


def test_the_reconfigure_hint_names_the_file_given(applied, tmp_path, monkeypatch):
    """`up -t a2.yaml` of a lab up from a.yaml: the refusal's command replaced the lab with the built-in default
    when typed as printed (`netlab up --reconfigure`); it names a2.yaml."""
    source = running(tmp_path, "qx1a")
    state = LabState(lab="qx1a", source=source, phase="up")
    given = str(tmp_path / "a2.yaml")
    with pytest.raises(UsageError) as err:
        check_source(state, given, reconfigure=False)
    assert str(err.value).endswith(f"replace the running lab with `{netlab_command(f'up -t {given} --reconfigure')}`")


def test_the_watchers_reconfigure_hint_names_the_file_given(applied, tmp_path, monkeypatch):
    """`up -t F --watch --reconfigure`: run the replacing `up` first, of F (it said `netlab up --reconfigure`)."""
    file = tmp_path / "w.yaml"
    file.write_text(two_node_topology("qx1w"))
    got = run_cli("up", "-t", str(file), "--watch", "--reconfigure")
    first = netlab_command(f"up -t {file} --reconfigure")
    assert got.returncode == 2 and got.stderr == (f"netlab: --watch applies the file as it is: run `{first}` first, "
                                                  "then --watch\n"), got


def test_readme_and_help_say_watch_and_reconfigure_do_not_combine():
    """The refusal above is the rule: README's command table wrote `netlab up [-t FILE] [--reconfigure] [--watch]`,
    two options one may give together, and `up --help` did not say they may not be."""
    import os
    import re

    readme = open(os.path.join(os.path.dirname(__file__), "..", "..", "README.md"), encoding="utf-8").read()
    synopsis = re.search(r"^\| `(netlab up [^`]*)`", readme, re.M)
    assert synopsis is not None and synopsis.group(1) == r"netlab up [-t FILE] [--reconfigure \| --watch]", synopsis
    helped = " ".join(run_cli("up", "--help").stdout.split())
    assert "Not with --reconfigure" in helped and "Not with --watch" in helped, helped
