"""``Lab.attach()`` picks the lab as every command does (a name, ``$NETLAB_LAB``, the only lab up), and says its
mistakes in a Python caller's words: it said the CLI's ("pick one with --lab NAME", "start one with: sudo netlab
up", "--lab 'Zz' is not a DNS label") to a program that has no --lab. The CLI keeps its own words."""

from __future__ import annotations

import pytest

from cli_inprocess import run_cli
from netlab.api import Lab
from netlab.errors import UsageError, netlab_command
from netlab.realize import state


@pytest.fixture
def up(state_root, monkeypatch):
    """Labs "up" as far as picking one goes: a saved state each."""
    monkeypatch.delenv(state.LAB_ENV, raising=False)

    def bring(*names: str) -> None:
        for name in names:
            state.LabState(lab=name, phase="up").save()
    return bring


def test_attach_with_no_lab_up_says_to_bring_one_up_with_the_api(up):
    with pytest.raises(UsageError) as err:
        Lab.attach()
    assert str(err.value) == "no lab is up; bring one up with Lab.up(topology)"
    got = run_cli("status")
    assert got.returncode == 2 and f"no lab is up; start one with: {netlab_command('up')}" in got.stderr, got.stderr


def test_attach_with_several_labs_up_says_to_name_one_to_attach(up):
    up("qx7a", "qx7b")
    with pytest.raises(UsageError) as err:
        Lab.attach()
    assert str(err.value) == "several labs are up (qx7a, qx7b); name one: Lab.attach(NAME)"
    got = run_cli("status")
    assert got.returncode == 2 and "several labs are up (qx7a, qx7b); pick one with --lab NAME" in got.stderr, (
        got.stderr)


def test_attach_of_a_name_that_is_no_lab_name_names_the_argument(up):
    with pytest.raises(UsageError) as err:
        Lab.attach("Zz")
    assert str(err.value).startswith("Lab.attach: name 'Zz' is not a DNS label"), err.value
    got = run_cli("status", "--lab", "Zz")
    assert got.returncode == 2 and "--lab 'Zz' is not a DNS label" in got.stderr, got.stderr


def test_attach_of_the_only_lab_up_or_a_named_one_still_attaches(up):
    up("qx7a")
    assert Lab.attach().name == "qx7a" and Lab.attach("qx7a").name == "qx7a"


def _lost(state_root, name: str) -> None:
    """Lab ``name`` with no state file, yet its folder holds what a run of it left (an echo server's socket)."""
    from netlab.realize import state_dir

    folder = state_root / name
    state_dir.lab_dir(name)  # made as netlab makes it (marked)
    (folder / "echo.sock").write_text("")


def _corrupt(state_root, name: str) -> None:
    from netlab.realize import state_dir

    folder = state_root / name
    state_dir.lab_dir(name)  # made as netlab makes it (marked)
    (folder / "state.json").write_text("{not json")


def _elsewhere(state_root, name: str, monkeypatch) -> None:
    from netlab.realize import tags

    monkeypatch.setattr(tags, "state_elsewhere", lambda lab, groups=None: tags.StateElsewhere(
        lab, [f"{lab}-n1"], "/run/other"))


@pytest.mark.parametrize("make, api_way, cli_way", [
    (_lost, "take the lab down with Lab('qx7a').down(force=True) (it deletes only",
     "take the lab down with `{force}` (it deletes only"),
    (_corrupt, "take the lab down anyway with Lab('qx7a').down(force=True) (it deletes only",
     "take the lab down anyway with `{force}` (it deletes only"),
    (_elsewhere, "use that folder: run the program with NETLAB_STATE_DIR=/run/other in its environment",
     "use that folder: `sudo NETLAB_STATE_DIR=/run/other netlab get pods --lab qx7a`"),
])
def test_attach_of_a_lab_whose_state_is_lost_corrupt_or_elsewhere_says_the_way_out_in_python(
        up, state_root, monkeypatch, make, api_way, cli_way):
    """A lab whose state was lost (or is corrupt, or is in another state folder) is said with its way out: the
    Python call for a Python caller, who has no `netlab down --lab ... --force` to type; the command for the
    CLI's user, whose commands attach to it too."""
    from netlab.errors import EnvironmentNotReady

    if make is _elsewhere:
        make(state_root, "qx7a", monkeypatch)
    else:
        make(state_root, "qx7a")
    with pytest.raises(EnvironmentNotReady) as err:
        Lab.attach("qx7a")
    words = str(err.value)
    assert api_way in words and "netlab down" not in words and "--lab" not in words, words
    got = run_cli("get", "pods", "--lab", "qx7a")
    # the command names the test's state folder, set once the fixtures ran (errors.netlab_command)
    cli_way = cli_way.replace("{force}", netlab_command("down --lab qx7a --force"))
    assert got.returncode == 3 and cli_way in got.stderr, got.stderr


def _unresolvable(state_root, name: str) -> None:
    """A state file that reads, whose saved topology no longer resolves (a node name that is no DNS label)."""
    state.LabState(lab=name, phase="up", topology={"name": name, "nodes": [{"name": "nX"}]}).save()


@pytest.mark.parametrize("make, read", [(_lost, "state"), (_lost, "model"), (_corrupt, "state"),
                                        (_corrupt, "model"), (_unresolvable, "model")])  # its state reads
def test_state_and_model_of_a_lab_whose_state_is_lost_or_corrupt_say_the_way_out_in_python(
        up, state_root, make, read):
    """``Lab('NAME').state()`` and ``.model`` said the CLI's way out (`sudo netlab down --lab NAME --force`) to a
    Python caller, where attach() names the call; the commands, which read the same lab's model after attaching
    to it, keep theirs."""
    from netlab.errors import EnvironmentNotReady

    make(state_root, "qx7a")
    with pytest.raises(EnvironmentNotReady) as err:
        Lab("qx7a").state() if read == "state" else Lab("qx7a").model
    words = str(err.value)
    assert "Lab('qx7a').down(force=True) (it deletes only" in words, words
    assert "netlab down" not in words and "--lab" not in words, words
    got = run_cli("get", "pods", "--lab", "qx7a")
    assert got.returncode == 3 and f"`{netlab_command('down --lab qx7a --force')}` (it deletes only" in got.stderr, (
        got.stderr)
