"""Every Lab method names the way out of a lab whose state is corrupt or lost in Python (QA q7 #1).

``lab.down()``, ``Lab(name).down()``, ``lab.repair()``, ``lab.impair()`` and ``Lab.up()`` told a Python caller
to run `sudo netlab down --lab L --force`, where ``attach``, ``status``, ``exec`` ... named
``Lab('L').down(force=True)``, as the README says. The words are set for every public method, classmethod and
property of a Lab at one place (netlab.api.words.InCallersWords), so a method added later cannot forget; the
CLI's commands, which call the same methods, keep the command.
"""

from __future__ import annotations

import inspect

import pytest
from cli_inprocess import run_cli

from netlab.api import Lab, lifecycle, load
from netlab.errors import EnvironmentNotReady, netlab_command
from netlab.kernel.fake import FakeKernel
from netlab.realize import state_dir

NAME = "qx7c"
PY_WAY = f"Lab('{NAME}').down(force=True) (it deletes only"


def cli_way() -> str:
    """The command's way out, naming the test's state folder (set once its fixtures ran: errors.netlab_command)."""
    return f"`{netlab_command(f'down --lab {NAME} --force')}` (it deletes only"


TOPO = {"name": NAME, "nodes": [{"name": "n1"}], "pods": [{"name": "a", "node": "n1"}]}


def _corrupt(root) -> None:
    state_dir.lab_dir(NAME)  # made as netlab makes it (marked)
    (root / NAME / "state.json").write_text("{not json")


def _lost(root) -> None:
    state_dir.lab_dir(NAME)
    (root / NAME / "echo.sock").write_text("")  # what a run of it left, no state file


def _calls(lab: Lab) -> dict:
    """One call of each public method, classmethod and property of a Lab."""
    return {
        "up": lambda: Lab.up(TOPO, name=NAME),
        "up_loaded": lambda: Lab.up_loaded(load(TOPO, NAME)),
        "attach": lambda: Lab.attach(NAME),
        "down": lambda: lab.down(),
        "repair": lambda: lab.repair(),
        "impair": lambda: lab.impair("a:eth0", rate="1mbit"),
        "impairments": lambda: lab.impairments(),
        "state": lambda: lab.state(),
        "model": lambda: lab.model,
        "pods": lambda: lab.pods(),
        "nodes": lambda: lab.nodes(),
        "services": lambda: lab.services(),
        "pod": lambda: lab.pod("a"),
        "node": lambda: lab.node("n1"),
        "service": lambda: lab.service("s"),
        "status": lambda: lab.status(),
        "probe": lambda: lab.probe(),
        "reach": lambda: lab.reach("a", "n1"),
        "trace": lambda: lab.trace("a", "n1"),
        "inspect": lambda: lab.inspect("a"),
        "namespaces": lambda: lab.namespaces(),
        "exec": lambda: lab.exec("a", ["true"]),
        "popen": lambda: lab.popen("a", ["true"]),
        "break_": lambda: lab.break_("vxlan-arp-missing", "n1"),
        "logs": lambda: lab.logs("a"),
        "cni_log": lambda: lab.cni_log(),
    }


def test_the_cases_below_call_every_public_method_of_a_lab():
    public = {name for name, _ in inspect.getmembers(Lab) if not name.startswith("_")} - {"name", "owned"}
    assert public == set(_calls(Lab(NAME))), "a Lab method was added: give it a call in _calls"


@pytest.mark.parametrize("make", [_corrupt, _lost])
@pytest.mark.parametrize("what", sorted(_calls(Lab(NAME))))
def test_every_lab_method_names_the_python_way_out(state_root, monkeypatch, make, what):
    if make is _lost and what in ("up", "up_loaded"):
        pytest.skip("up from a topology reads no lost state: it brings the lab up from the topology")
    monkeypatch.setattr(lifecycle, "live_kernel", FakeKernel)  # down reads the lab before it touches a kernel
    make(state_root)
    with pytest.raises(EnvironmentNotReady) as err:
        _calls(Lab(NAME))[what]()
    words = str(err.value)
    assert PY_WAY in words and "netlab down" not in words and "--lab" not in words, words


@pytest.mark.parametrize("make", [_corrupt, _lost])
@pytest.mark.parametrize("args", [("down", "--lab", NAME), ("up", "--lab", NAME), ("status", "--lab", NAME),
                                  ("impair", "a:eth0", "--rate", "1mbit", "--lab", NAME)])
def test_the_commands_calling_the_same_methods_keep_the_command(state_root, monkeypatch, make, args):
    monkeypatch.setattr(lifecycle, "live_kernel", FakeKernel)
    make(state_root)
    got = run_cli(*args)
    assert got.returncode == 3 and cli_way() in got.stderr and "Lab(" not in got.stderr, got.stderr


def test_a_lab_method_that_calls_another_says_it_in_its_own_callers_words(state_root, monkeypatch):
    """repair() runs up_loaded: said once, in the words of the outermost call (a Python caller's, or the CLI's
    lab from internal_attach, whose ``_api_words`` is False)."""
    _corrupt(state_root)
    lab = Lab(NAME)
    lab._api_words = False
    with pytest.raises(EnvironmentNotReady) as err:
        lab.repair()
    assert cli_way() in str(err.value), err.value
