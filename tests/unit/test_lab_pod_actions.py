"""The Lab's actions inside pods without root (netlab.api.lab_pods): what is refused before any lab is read,
the break's result, and the one error for a gone namespace.

The actions on real labs: tests/integration/test_api_pod_actions.py."""

from __future__ import annotations

import contextlib
import dataclasses
import pickle
import subprocess
from pathlib import Path

import pytest

from netlab import Lab, api
from netlab.api import results as R
from netlab.breaks import catalogue
from netlab.errors import NetlabError, NetnsGone, UsageError, netlab_command


def test_the_split_keeps_every_name_of_the_lab():
    import netlab.api.lab as lab_mod

    for name in ("exec", "popen", "logs", "inspect", "namespaces", "break_", "reach", "trace", "up", "down",
                 "reaches", "traces"):
        assert hasattr(Lab, name) or name in Lab("qgnone").__dict__, name
    assert api.Lab is Lab is lab_mod.Lab and api.BreakResult is R.BreakResult


def test_an_unknown_scenario_is_a_usage_error_naming_every_scenario_before_any_lab_is_read():
    """Worded as every other method's argument (netlab.api.args: ``lab.METHOD: ARG 'value': want one of ...``),
    not in break_'s own older words (``lab.break_: no break scenario 'x'; scenarios: ...``)."""
    lab = Lab("qgnone")  # no such lab: the scenario is checked first
    with pytest.raises(UsageError) as err:
        lab.break_("vxlan-arp")
    assert str(err.value) == ("lab.break_: scenario 'vxlan-arp': want one of "
                              + ", ".join(s.name for s in catalogue.SCENARIOS))
    assert err.value.exit_code == 2


def test_a_break_result_is_a_value_with_the_cli_json_fields():
    res = R.BreakResult(lab="l", scenario="ip-forward-off", target="n1", changes=("sysctl ...",))
    with pytest.raises(dataclasses.FrozenInstanceError):
        res.lab = "x"  # type: ignore[misc]
    assert pickle.loads(pickle.dumps(res)) == res and hash(res)
    assert api.to_json(res) == {"lab": "l", "scenario": "ip-forward-off", "target": "n1", "changes": ["sysctl ..."],
                                "already": False, "in_place": [], "warnings": []}
    assert set(api.to_json(res)) == set(run_json())  # netlab break -o json's fields, no more, no fewer
    assert api.from_json(R.BreakResult, api.to_json(res)) == res


def run_json() -> dict:
    from netlab.breaks import run

    return run.BreakResult("l", "ip-forward-off", "n1").to_json()


def test_the_same_break_again_says_already_and_warns_of_nothing(monkeypatch):
    """`netlab break` of a scenario in place already says "is broken already ... nothing changed"; ``lab.break_``
    returned no such fact (and warned that the lab was broken already, its differences being this break's own)."""
    import types

    from netlab.breaks import run

    drift = ["different: sysctl net.ipv4.ip_forward in qgnone-n1 (is 0, want 1)"]
    monkeypatch.setattr("netlab.api.internals.internal_status", lambda lab, topology=None, kernel=None, reader="status": (
        types.SimpleNamespace(drift=tuple(drift), kept=())))
    monkeypatch.setattr(run, "break_lab", lambda lab, name, target=None, wait=60.0: run.BreakResult(
        lab, name, "n1", already=True))
    res = Lab("qgnone").break_("ip-forward-off", "n1")
    assert (res.already, res.changes, res.warnings) == (True, (), ())
    assert api.to_json(res)["already"] is True and api.from_json(R.BreakResult, api.to_json(res)) == res


def test_a_break_on_a_lab_broken_already_warns_in_its_result_as_the_cli_does(monkeypatch):
    """`netlab break` on a lab that was not as planned warns on stderr that what probe and trace show is not this
    fault's alone; ``lab.break_`` said nothing (its result had no field for it). Its ``warnings`` now holds the
    same line, naming the library's calls (status, repair) where the CLI names its commands; the same differences
    count (not a Never pod's failed container, which no repair clears), and none on a lab as planned."""
    import types

    from netlab.breaks import run

    drift: list[str] = []
    monkeypatch.setattr("netlab.api.internals.internal_status", lambda lab, topology=None, kernel=None, reader="status": (
        types.SimpleNamespace(drift=tuple(drift), kept=tuple(d for d in drift if d.startswith("containers")))))
    monkeypatch.setattr(run, "break_lab", lambda lab, name, target=None, wait=60.0: run.BreakResult(
        lab, name, "n1", ["ip netns exec qgnone-n1 sysctl -w net.ipv4.ip_forward=0"]))
    lab = Lab("qgnone")
    clean = lab.break_("ip-forward-off")
    assert clean.warnings == () and clean.changes == ("ip netns exec qgnone-n1 sysctl -w net.ipv4.ip_forward=0",)
    drift += ["containers: a Never pod's failed", "missing: route 10.244.1.0/24"]
    assert lab.break_("ip-forward-off").warnings == (
        "lab qgnone was broken already (1 difference from its plan before this break): what probe and trace show "
        "is not this fault's alone; `Lab('qgnone').status()` lists them, `Lab('qgnone').repair()` repairs them all",)
    drift += ["sysctl: net.ipv4.ip_forward"]
    res = lab.break_("ip-forward-off")
    assert [w.split(": what")[0] for w in res.warnings] == [
        "lab qgnone was broken already (2 differences from its plan before this break)"]
    assert api.to_json(res)["warnings"] == list(res.warnings) and api.from_json(R.BreakResult, api.to_json(res)) == res
    drift[:] = ["containers: a Never pod's failed"]
    assert lab.break_("ip-forward-off").warnings == ()




def test_popen_enters_the_pod_itself():
    with pytest.raises(UsageError, match="preexec_fn"):
        Lab("qgnone").popen("a", ["true"], preexec_fn=print)
    with pytest.raises(UsageError, match="no command"):
        Lab("qgnone").popen("a", [])


def test_a_gone_namespace_is_one_error_a_usage_error_and_a_file_not_found():
    err = NetnsGone("l-b", "/run/netns/l-b")
    assert isinstance(err, UsageError) and isinstance(err, FileNotFoundError) and isinstance(err, NetlabError)
    assert err.exit_code == 2
    assert str(err) == f"namespace l-b does not exist; is the lab up? (`{netlab_command('status')}`)"
    # where the raiser knows the lab (every method of a Lab, the trace), the status it names is that lab's
    assert str(NetnsGone("l-b", "/run/netns/l-b", "l")) == ("namespace l-b does not exist; is the lab up? "
                                                           f"(`{netlab_command('status --lab l')}`)")


def test_a_namespace_deleted_from_a_lab_that_is_up_says_up_makes_it_again():
    from netlab.realize.netns_missing import netns_gone
    from netlab.realize.state_dir import state_file, write_atomic

    down = netns_gone(NetnsGone("l-b", "/run/netns/l-b"), "l")  # no state: the lab is down (or never was up)
    assert (down.lab, down.lab_up) == ("l", False)
    assert str(down) == f"namespace l-b does not exist; is the lab up? (`{netlab_command('status --lab l')}`)"
    write_atomic(state_file("l", create=True), b"{}")  # its state is there: the lab is up, `ip netns del` took one
    up = netns_gone(NetnsGone("l-b", "/run/netns/l-b"), "l")
    assert isinstance(up, UsageError) and up.exit_code == 2 and up.lab_up
    assert str(up) == f"namespace l-b was deleted while lab l is up; `{netlab_command('up --lab l')}` makes it again"


class _NoEnter:
    """Stands for the pod's namespaces (netlab.api.exec.Enter): the command runs where the test runs."""

    fds = ()

    def __call__(self) -> None:
        pass


@pytest.mark.parametrize("argv,code,line", [
    (["/nonexistent"], 127, "netlab: /nonexistent: command not found"),
    (["no-such-program-qx4"], 127, "netlab: no-such-program-qx4: command not found"),
    (["/"], 126, "netlab: /: permission denied"),
])
def test_a_program_that_cannot_run_is_the_cli_exit_status_and_line_not_a_python_error(argv, code, line):
    """``netlab exec`` prints "command not found" and exits 127 (126: there, not runnable), as a shell does;
    ``lab.exec`` raised Python's FileNotFoundError. Both now take the status and line from one place."""
    from netlab.api.exec import cannot_run
    from netlab.api.lab_pods import _run_captured

    done = _run_captured(argv, None, 10, False, None, _NoEnter())
    assert (done.returncode, done.stdout, done.stderr) == (code, "", line + "\n")
    assert cannot_run(argv[0], FileNotFoundError(2, "x")) == (127, f"netlab: {argv[0]}: command not found")
    with pytest.raises(subprocess.CalledProcessError) as failed:  # check=True: as for any command that failed
        _run_captured(argv, None, 10, True, None, _NoEnter())
    assert failed.value.returncode == code and failed.value.stderr == line + "\n"


@pytest.mark.parametrize("argv,code,line", [
    (["no\x00such"], 126, 'netlab: "no\\u0000such": cannot execute: embedded null byte'),
    (["no\nsuch"], 127, 'netlab: "no\\nsuch": command not found'),
    (["\x1b[2Jno-such"], 127, 'netlab: "\\u001b[2Jno-such": command not found'),
    ([Path("/nonexistent-qx")], 127, "netlab: /nonexistent-qx: command not found"),  # as Popen takes a program
    ([b"/nonexistent-qx"], 127, "netlab: /nonexistent-qx: command not found"),
])
def test_a_program_name_with_control_characters_is_said_escaped_on_one_line(argv, code, line):
    """A NUL, a newline or an escape sequence in the program's name was printed as it was: the NUL raw on the
    terminal, the newline starting a second line, the escape clearing the screen. The line names it escaped,
    as netlab names a file (errors.display_path), for ``lab.exec`` and ``netlab exec`` (both cannot_run's)."""
    from netlab.api.exec import cannot_run
    from netlab.api.lab_pods import _run_captured

    done = _run_captured(argv, None, 10, False, None, _NoEnter())
    assert (done.returncode, done.stdout, done.stderr) == (code, "", line + "\n")
    assert line.isprintable()
    assert cannot_run(argv[0], FileNotFoundError(2, "x"))[1].isprintable()


class _Here:
    """Stands for a pod's namespaces to enter (netlab.api.exec.Target): the process starts where the test runs."""

    @contextlib.contextmanager
    def opened(self):
        yield _NoEnter()


@pytest.mark.parametrize("argv,kwargs,code,message", [
    (["/nonexistent-qx"], {}, 127, "/nonexistent-qx: command not found"),
    (["no-such-program-qx4", "-v"], {}, 127, "no-such-program-qx4: command not found"),
    (["srv"], {"executable": "/nonexistent-qx"}, 127, "/nonexistent-qx: command not found"),
    (["/"], {}, 126, "/: permission denied"),
])
def test_popen_of_a_program_that_cannot_run_raises_netlabs_error_with_execs_line(monkeypatch, argv, kwargs, code,
                                                                                 message):
    """``lab.popen`` of a missing program raised Popen's FileNotFoundError, where ``lab.exec`` returns 127 and
    ``netlab exec``'s line. It raises CannotRun (a UsageError, so a NetlabError): that line (the CLI prints it
    after ``netlab: ``) and the status exec gives."""
    from netlab.api import exec as exec_mod
    from netlab.api.lab_pods import _run_captured
    from netlab.errors import CannotRun

    monkeypatch.setattr(exec_mod, "exec_target", lambda state, model, name: _Here())
    monkeypatch.setattr(Lab, "state", lambda self: None)
    monkeypatch.setattr(Lab, "model", None)
    with pytest.raises(CannotRun) as raised:
        Lab("qgnone").popen("a", argv, **kwargs)
    assert isinstance(raised.value, UsageError) and raised.value.__cause__ is None
    assert (str(raised.value), raised.value.returncode) == (message, code)
    if not kwargs:  # what exec gives for the same program
        done = _run_captured(argv, None, 10, False, None, _NoEnter())
        assert (done.returncode, done.stderr) == (code, f"netlab: {message}\n")


def test_popen_keeps_an_error_that_is_not_about_the_program(monkeypatch, tmp_path):
    """A cwd that is not there is Popen's own FileNotFoundError, naming the cwd: the program is not missing."""
    from netlab.api import exec as exec_mod

    monkeypatch.setattr(exec_mod, "exec_target", lambda state, model, name: _Here())
    monkeypatch.setattr(Lab, "state", lambda self: None)
    monkeypatch.setattr(Lab, "model", None)
    with pytest.raises(FileNotFoundError) as raised:
        Lab("qgnone").popen("a", ["true"], cwd=str(tmp_path / "gone"))
    assert raised.value.filename == str(tmp_path / "gone")


@pytest.mark.parametrize("method,command,kwargs,message", [
    ("exec", ["echo", "a\x00b"], {}, 'lab.exec: argument 1 ("a\\u0000b") holds a NUL byte, which a program\'s '
                                      "argument cannot"),
    ("exec", "echo a\x00b", {}, 'lab.exec: the command "echo a\\u0000b" holds a NUL byte, which a program\'s '
                                "command line cannot"),
    ("exec", ["true"], {"env": {"A": "x\x00"}}, "lab.exec: env[A] holds a NUL byte, which a program's environment "
                                                "cannot"),
    ("popen", ["echo", "ok", b"a\x00"], {}, 'lab.popen: argument 2 ("a\\u0000") holds a NUL byte, which a '
                                           "program's argument cannot"),
    ("popen", ["true"], {"env": {"A\x00": "x"}}, 'lab.popen: env["A\\u0000"] holds a NUL byte, which a program\'s '
                                                 "environment cannot"),
])
def test_a_nul_after_the_programs_name_is_said_where_it_is(monkeypatch, method, command, kwargs, message):
    """A NUL in an argument or in env made Popen's ValueError, which lab.exec reported as the program's
    (``cannot execute: embedded null byte``, 126) and lab.popen raised as it was: a UsageError names it."""
    from netlab.api import exec as exec_mod

    monkeypatch.setattr(exec_mod, "exec_target", lambda state, model, name: _Here())
    monkeypatch.setattr(Lab, "state", lambda self: None)
    monkeypatch.setattr(Lab, "model", None)
    with pytest.raises(UsageError) as raised:
        getattr(Lab("qgnone"), method)("a", command, **kwargs)
    assert str(raised.value) == message and str(raised.value).isprintable()
