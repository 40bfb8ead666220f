"""The windows where a stop signal printed a traceback, or was lost, or left something half made (no root).

Found by a QA loop of `timeout -s INT|TERM 0.0X netlab up`: each window here, closed. The real program with
real signals: tests/integration/test_stop_windows_live.py.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys

import pytest
from cli_inprocess import run_cli
from fake_lab import make_lab, up

from netlab.errors import down_command
from netlab import signals
from netlab.errors import EXIT_ENVIRONMENT, EXIT_INVALID_INPUT, Problem, TopologyError
from netlab.kernel.fake import FakeKernel
from netlab.lab import rollback, teardown, up as lab_up
from netlab.lab.journal import Journal
from netlab.realize import lab_lock, state as state_mod, state_dir

lab = pytest.fixture(make_lab, name="lab")


@pytest.fixture
def no_signal_yet(monkeypatch):
    monkeypatch.setattr(signals, "_raised", [])  # this test's signals, not the next test's
    old = {sig: signal.getsignal(sig) for sig in signals.STOPPING}
    yield
    for sig, handler in old.items():
        signal.signal(sig, handler)


def set_name_interrupted() -> BaseException:
    """What Python 3.11 makes of a KeyboardInterrupt raised inside a dataclass field's ``__set_name__`` as a
    module is imported: a RuntimeError whose cause is the KeyboardInterrupt."""
    class Field:
        def __set_name__(self, owner, name):
            raise KeyboardInterrupt

    try:
        type("RuntimeConf", (), {"capability_args": Field()})
    except BaseException as exc:  # noqa: BLE001 - what it is depends on the Python
        return exc
    raise AssertionError("__set_name__ was not called")


def test_an_interrupt_that_python_wrapped_in_an_import_is_one_line_and_130(monkeypatch, tmp_path, no_signal_yet):
    wrapped = set_name_interrupted()
    path = tmp_path / "t.yaml"
    path.write_text("name: w\nnodes: [{name: n1}]\n")

    def load(*args, **kwargs):
        raise wrapped

    monkeypatch.setattr("netlab.api.load", load)
    got = run_cli("up", "-t", str(path))
    assert (got.returncode, got.stderr) == (130, "netlab: interrupted\n"), got


@pytest.mark.parametrize("handler, said", [(signals.raise_terminated, (143, "netlab: interrupted by SIGTERM\n")),
                                           (signals.raise_interrupt, (130, "netlab: interrupted\n"))])
def test_an_error_a_wrapper_made_of_the_signals_exception_is_the_signals_line(monkeypatch, tmp_path, no_signal_yet,
                                                                              handler, said):
    """pydantic builds a validator with the signal's exception inside and raises its own SchemaError, no cause,
    naming it as pyo3 shows an error: `Terminated: interrupted by SIGTERM`, `Kept: ` (Ctrl-C's)."""
    path = tmp_path / "t.yaml"
    path.write_text("name: w\nnodes: [{name: n1}]\n")

    def load(*args, **kwargs):
        try:
            handler(signal.SIGTERM if handler is signals.raise_terminated else signal.SIGINT, None)
        except KeyboardInterrupt as exc:
            raise ValueError(f'Error building "model" validator:\n  SchemaError: Error building "literal" '
                             f'validator:\n  {type(exc).__name__}: {exc}') from None

    monkeypatch.setattr("netlab.api.load", load)
    got = run_cli("up", "-t", str(path))
    assert (got.returncode, got.stderr) == said, got


@pytest.mark.parametrize("error, said", [
    (lambda: TopologyError([Problem("t.yaml", 2, "nodes[0].name", "'N1' is not a valid name")]),
     (EXIT_INVALID_INPUT, "t.yaml:2: nodes[0].name: 'N1' is not a valid name\n")),
    (lambda: PermissionError(1, "Operation not permitted", "/run/netns/x"),
     (EXIT_ENVIRONMENT, "netlab: permission denied: /run/netns/x; run it with sudo\n"))])
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_an_error_of_its_own_once_a_signal_came_is_said_as_itself(monkeypatch, tmp_path, no_signal_yet, sig, error,
                                                                    said):
    """A signal whose exception a finalizer swallowed (kept by the program's handler), then an error of its own
    (a user's mistake, a refusal): the error's line and exit status, not the signal's, which hid it."""
    path = tmp_path / "t.yaml"
    path.write_text("name: w\nnodes: [{name: n1}]\n")
    handler = signals.raise_terminated if sig == signal.SIGTERM else signals.raise_interrupt

    def load(*args, **kwargs):
        with contextlib.suppress(KeyboardInterrupt):  # as a __del__ drops it
            handler(sig, None)
        raise error()

    monkeypatch.setattr("netlab.api.load", load)
    got = run_cli("up", "-t", str(path))
    assert signals._raised == [sig] and (got.returncode, got.stderr) == said, got


def test_a_bug_once_a_signal_came_is_still_a_traceback(monkeypatch, tmp_path, no_signal_yet):
    path = tmp_path / "t.yaml"
    path.write_text("name: w\nnodes: [{name: n1}]\n")

    def load(*args, **kwargs):
        with contextlib.suppress(KeyboardInterrupt):
            signals.raise_terminated(signal.SIGTERM, None)
        return 1 / 0

    monkeypatch.setattr("netlab.api.load", load)
    got = run_cli("up", "-t", str(path))
    assert got.returncode == 1 and "ZeroDivisionError" in got.stderr and "SIGTERM" not in got.stderr, got


def test_a_bug_with_no_signal_is_still_a_traceback(monkeypatch, tmp_path, no_signal_yet):
    path = tmp_path / "t.yaml"
    path.write_text("name: w\nnodes: [{name: n1}]\n")
    monkeypatch.setattr("netlab.api.load", lambda *a, **k: 1 / 0)
    got = run_cli("up", "-t", str(path))
    assert got.returncode == 1 and "ZeroDivisionError" in got.stderr


def test_a_second_signal_as_the_first_ones_line_is_said_is_ignored(monkeypatch, tmp_path, no_signal_yet):
    """``timeout`` sends its signal to the program, then to its process group: the second KeyboardInterrupt
    landed as the first one's line was written (click.echo), a traceback."""
    import click

    path = tmp_path / "t.yaml"
    path.write_text("name: w\nnodes: [{name: n1}]\n")
    signal.signal(signal.SIGINT, signals.raise_interrupt)
    monkeypatch.setattr(signals, "_program", [True])  # as in the program (launch.py): it may ignore the second
    echo, sent = click.echo, []

    def echo_signalled(*args, **kwargs):
        if kwargs.get("err") and not sent:
            sent.append(1)
            os.kill(os.getpid(), signal.SIGINT)
        return echo(*args, **kwargs)

    def load(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(click, "echo", echo_signalled)
    monkeypatch.setattr("netlab.api.load", load)
    got = run_cli("up", "-t", str(path))
    assert sent and got.returncode == 130, got
    assert got.stderr.startswith("netlab: interrupted while it read the topology"), got
    assert got.stderr.count("\n") == 1, got


def test_a_ctrl_c_that_a_finalizer_swallowed_is_kept_and_not_printed():
    """An import's module-lock callback swallowed the program's KeyboardInterrupt ("Exception ignored in ...
    KeyboardInterrupt"), and the lab came up, exit 0: Ctrl-C is kept as SIGTERM is, and up asks before it
    changes anything (signals.check)."""
    code = ("import signal\n"
            "from netlab import signals\n"
            "signal.signal(signal.SIGINT, signal.default_int_handler)  # as Python starts (xdist's workers ignore it)\n"
            "signals.terminate_as_interrupt()\n"
            "class Dropped:\n"
            "    def __del__(self):\n"
            "        signal.raise_signal(signal.SIGINT)\n"
            "        sum(range(10))\n"
            "Dropped()\n"
            "print('went on')\n"
            "try:\n"
            "    signals.check()\n"
            "except KeyboardInterrupt as exc:\n"
            "    print('raised again:', exc)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.stdout == "went on\nraised again: interrupted by SIGINT\n" and proc.stderr == "", proc


def test_a_sigterm_before_netlab_signals_is_loaded_is_one_line_and_143():
    """The program's first import (netlab.signals) came before its SIGTERM handler: the default's silent death."""
    code = ("import builtins, os, signal, sys\n"
            "real = builtins.__import__\n"
            "def terminated(name, *args, **kwargs):\n"
            "    if name == 'netlab' and args and args[2] and 'signals' in args[2]:\n"
            "        os.kill(os.getpid(), signal.SIGTERM)\n"
            "    return real(name, *args, **kwargs)\n"
            "from netlab.launch import main\n"
            "builtins.__import__ = terminated\n"
            "sys.argv = ['netlab', '--version']\n"
            "main()\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert (proc.returncode, proc.stderr) == (143, "netlab: interrupted by SIGTERM\n"), proc


def test_an_error_a_signal_became_during_the_change_is_rolled_back_as_the_signal(lab):
    """A signal's exception wrapped by Python inside the run (an import's dataclass): said as the signal,
    rolled back, not "apply failed"."""
    k = FakeKernel()
    real = k.create_netns

    def create_then_wrapped(name, tag, sysctls):
        real(name, tag, sysctls)
        raise set_name_interrupted()

    k.create_netns = create_then_wrapped
    with pytest.raises(rollback.Interrupted) as info:
        lab_up.up(lab, k, features=(), journal=Journal(k))
    assert info.value.exit_code == 130 and str(info.value) == "interrupted by SIGINT; rolled back"
    assert not k.ns and state_mod.load_state(lab.name) is None


def test_a_signal_once_up_is_done_says_the_lab_is_up(lab, monkeypatch, tmp_path, no_signal_yet):
    """The fresh lab made whole, the signal came as up let go of it: it was said "interrupted by SIGTERM" alone,
    as if taken back."""
    k = FakeKernel()

    def up_then_terminated(cls, loaded, **kw):
        up(lab, k)
        signals.raise_terminated(signal.SIGTERM, None)

    monkeypatch.setattr("netlab.cli.lab.require_root", lambda: None)
    monkeypatch.setattr("netlab.api.Lab.up_loaded", classmethod(up_then_terminated))
    got = run_cli("up", "-t", str(tmp_path / "t.yaml"))
    said = (f"netlab: interrupted by SIGTERM; lab {lab.name} is up (`{down_command(lab.name)}` takes it "
            "down)\n")
    assert (got.returncode, got.stderr) == (143, said), got
    assert k.ns and state_mod.load_state(lab.name).phase == "up"


def test_down_is_stopped_at_once_while_it_reads_the_state(lab, monkeypatch, no_signal_yet):
    """Before down changes anything, a signal ends it there: nothing changed (it was held from the lock on, and
    a read that blocked could only be stopped by SIGKILL)."""
    signal.signal(signal.SIGTERM, signals.raise_terminated)
    k = FakeKernel()
    up(lab, k)
    made = sorted(k.ns)
    load_state = teardown.load_state

    def read_then_terminated(name):
        os.kill(os.getpid(), signal.SIGTERM)
        return load_state(name)

    monkeypatch.setattr(teardown, "load_state", read_then_terminated)
    with pytest.raises(signals.Terminated):
        teardown.down(lab.name, k)
    assert sorted(k.ns) == made and state_mod.load_state(lab.name) is not None


def test_down_force_is_stopped_at_once_while_it_reads_the_state(lab, monkeypatch, no_signal_yet):
    signal.signal(signal.SIGTERM, signals.raise_terminated)
    k = FakeKernel()
    up(lab, k)
    made = sorted(k.ns)
    from netlab.realize import ownership

    force_states = ownership.force_states

    def read_then_terminated(*args):
        os.kill(os.getpid(), signal.SIGTERM)
        return force_states(*args)

    monkeypatch.setattr(ownership, "force_states", read_then_terminated)
    with pytest.raises(signals.Terminated):
        teardown.down(lab.name, k, force=True)
    assert sorted(k.ns) == made and state_mod.load_state(lab.name) is not None


@pytest.mark.parametrize("where", ["folder", "lock"])
def test_a_signal_as_a_lab_lock_is_taken_leaves_no_folder(lab, monkeypatch, where):
    """An `up` of a lab that is not up, stopped as it made the lab's folder (its lock file not made yet) or as it
    took the lock: the folder stayed, empty or with its lock alone."""
    if where == "folder":
        def made_then_stopped(name, lock):
            state_dir.lab_dir(name)
            raise KeyboardInterrupt
        monkeypatch.setattr(lab_lock, "_open_lab_file", made_then_stopped)
    else:
        def named_then_stopped(fd, text, program=False):
            raise KeyboardInterrupt
        monkeypatch.setattr(lab_lock.lockfile, "name_holder", named_then_stopped)
    with pytest.raises(KeyboardInterrupt):
        with lab_lock.LabLock(lab.name, "netlab up"):
            pass
    assert not os.path.lexists(os.path.join(state_dir.STATE_ROOT, lab.name))
