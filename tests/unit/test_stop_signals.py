"""SIGTERM stops a netlab command as Ctrl-C does, with the signal's exit status (no root).

`timeout`, systemd and a CI job's cancel send SIGTERM. Left to its default it killed the program silently
with 143 wherever up was not inside its rollback's handlers. Now the program raises signals.Terminated (a
KeyboardInterrupt) from its first line: one line, exit 128 + the signal (130 SIGINT, 143 SIGTERM); up rolls
back whatever it had begun, also when the signal lands as it saves its write-ahead. The real processes, with
real signals: tests/integration/test_signals_live.py.
"""

from __future__ import annotations

import os
import pty
import select
import signal
import subprocess
import sys

import pytest
from cli_inprocess import run_cli
from fake_lab import make_lab

from netlab import signals
from netlab.errors import EXIT_APPLY_FAILED, ApplyFailed
from netlab.kernel.fake import FakeKernel
from netlab.lab import rollback, up as lab_up
from netlab.lab.journal import Journal
from netlab.realize import state as state_mod

lab = pytest.fixture(make_lab, name="lab")

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_the_program_handles_sigterm_from_its_first_line_and_says_it_in_one_line():
    """A SIGTERM while Python loads the commands (here: as their import begins) is one line and 143."""
    code = ("import builtins, os, signal\n"
            "real = builtins.__import__\n"
            "def terminated(name, *args, **kwargs):\n"
            "    if name == 'netlab.cli':\n"
            "        os.kill(os.getpid(), signal.SIGTERM)\n"
            "    return real(name, *args, **kwargs)\n"
            "builtins.__import__ = terminated\n"
            "from netlab.launch import main\n"
            "main()\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert (proc.returncode, proc.stderr) == (143, "netlab: interrupted by SIGTERM\n")

# what `up` adds to a stop signal's line while it reads the topology (cli/endings.py load_stopped)
READ = (" while it read the topology, before it changed anything; the lab of {path} is as it was (what the edit "
        "would change was not known yet)")


def test_sigterm_in_a_command_is_one_line_and_143(monkeypatch, tmp_path):
    path = tmp_path / "t.yaml"
    path.write_text("name: w\nnodes: [{name: n1}]\n")

    def terminated(*args, **kwargs):
        signals.raise_terminated(signal.SIGTERM, None)

    monkeypatch.setattr(signals, "_raised", [])  # this test's SIGTERM, not the next test's
    monkeypatch.setattr("netlab.api.load", terminated)
    got = run_cli("up", "-t", str(path))
    assert (got.returncode, got.stderr) == (143, f"netlab: interrupted by SIGTERM{READ.format(path=path)}\n"), got
    assert signals.exit_code(KeyboardInterrupt()) == 130 and signals.exit_code(signals.Terminated()) == 143


def test_ctrl_c_in_a_command_is_one_line_and_130_with_no_blank_line_before(monkeypatch, tmp_path):
    """click echoes an empty line on stderr when a KeyboardInterrupt leaves a command (to close a terminal's
    ``^C``), then its Abort: `netlab: interrupted` came after a blank line."""
    path = tmp_path / "t.yaml"
    path.write_text("name: w\nnodes: [{name: n1}]\n")

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("netlab.api.load", interrupted)
    got = run_cli("up", "-t", str(path))
    assert (got.returncode, got.stderr) == (130, f"netlab: interrupted{READ.format(path=path)}\n"), got
    got = run_cli("--debug", "up", "-t", str(path))  # not an error: no traceback either
    assert (got.returncode, got.stderr) == (130, f"netlab: interrupted{READ.format(path=path)}\n"), got


def test_a_sigterm_whose_exception_a_finalizer_swallowed_is_silent_and_stops_up_before_any_change(lab):
    """Python runs a signal's handler wherever the main thread is: inside an object's __del__ its exception is
    "ignored" (printed) and the program went on. An `up` signalled as it loaded brought the lab up and exited 0
    (a CI flake). The program's Terminated is remembered: up asks before its first change, and the finalizer's
    traceback is not printed (in a program of its own: the handler and hook are the program's)."""
    code = ("import signal, sys\n"
            "from netlab import signals\n"
            "signals.terminate_as_interrupt()\n"
            "class Dropped:\n"
            "    def __del__(self):\n"
            "        signal.raise_signal(signal.SIGTERM)\n"
            "        sum(range(10))  # the handler runs here, inside the finalizer\n"
            "Dropped()\n"
            "print('went on')\n"
            "try:\n"
            "    signals.check()\n"
            "except signals.Terminated as exc:\n"
            "    print('raised again:', exc)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.stdout == "went on\nraised again: interrupted by SIGTERM\n" and proc.stderr == "", proc
    # up asks before it changes anything: nothing made, no state written
    k = FakeKernel()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(signals, "_raised", [signal.SIGTERM])
        with pytest.raises(signals.Terminated):
            lab_up.up(lab, k, features=(), journal=Journal(k))
    assert not k.ns and not k.log and state_mod.load_state(lab.name) is None


@pytest.mark.parametrize("raised, printed", [
    ("rollback.Interrupted('interrupted by SIGINT; rolled back')", False),  # up's own, kept in its journal
    ("signals.Terminated('interrupted by SIGTERM')", False),  # the program's, kept for signals.check()
    ("KeyboardInterrupt()", True),  # kept by nobody: Python's line stays, the only word of it
    ("ValueError('a bug')", True),
])
def test_only_a_kept_stop_signal_swallowed_by_a_finalizer_goes_unprinted(raised, printed):
    """The program's hook (signals.terminate_as_interrupt) leaves out Python's "Exception ignored" traceback for
    a stop signal's exception that is raised again later (up's Interrupted, the program's Terminated), and only
    for those."""
    code = ("from netlab import signals\n"
            "from netlab.lab import rollback\n"
            "signals.terminate_as_interrupt()\n"
            "class Dropped:\n"
            "    def __del__(self):\n"
            f"        raise {raised}\n"
            "Dropped()\n"
            "print('went on')\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.stdout == "went on\n" and ("Exception ignored" in proc.stderr) == printed, proc


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_during_the_change_whose_exception_was_swallowed_still_rolls_back(lab, sig):
    """up's own handler raises its Interrupted wherever the main thread is; inside an object's __del__ Python
    drops it and the run went on to the end. The journal keeps the signal: its next step raises it again."""
    k = FakeKernel()

    class Swallowed(Journal):
        def step(self, what: str) -> None:
            super().step(what)
            if what.startswith("create namespace") and not self.stopped:
                self.stopped.append(sig)  # the handler ran inside a finalizer: recorded, its raise dropped

    with pytest.raises(rollback.Interrupted) as info:
        lab_up.up(lab, k, features=(), journal=Swallowed(k))
    assert info.value.exit_code == 128 + sig
    assert str(info.value) == f"interrupted by {signal.Signals(sig).name}; rolled back"
    assert not k.ns and state_mod.load_state(lab.name) is None


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_refusal_after_a_signal_whose_exception_was_swallowed_is_said_as_itself(lab, sig):
    """The journal keeps a signal whose Interrupted a finalizer dropped; the same step then fails on its own
    (the kernel refuses): rolled back and said as that refusal, exit 4, not as the signal that hid it."""
    k = FakeKernel()

    class Swallowed(Journal):
        def step(self, what: str) -> None:
            super().step(what)
            if what.startswith("create namespace") and not self.stopped:
                self.stopped.append(sig)

    def refused(name, tag, sysctls):
        raise PermissionError(1, "Operation not permitted", f"/run/netns/{name}")

    k.create_netns = refused
    with pytest.raises(ApplyFailed) as info:
        lab_up.up(lab, k, features=(), journal=Swallowed(k))
    assert info.value.exit_code == EXIT_APPLY_FAILED
    assert str(info.value).startswith("PermissionError: [Errno 1] Operation not permitted") and "rolled back" in str(
        info.value) and "interrupted" not in str(info.value), info.value
    assert not k.ns and state_mod.load_state(lab.name) is None


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_as_up_saves_its_write_ahead_rolls_back_what_it_names(lab, monkeypatch, sig):
    """The signal lands while the state naming the namespaces to make is written: it waits for the write,
    then the run is rolled back (a fresh lab: nothing left, not even its state, which said `creating`)."""
    k = FakeKernel()
    real = state_mod.LabState.save

    def save_signalled(self, *args, **kwargs):
        if self.phase == "creating" and not k.ns:
            os.kill(os.getpid(), sig)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(state_mod.LabState, "save", save_signalled)
    with pytest.raises(rollback.Interrupted) as info:
        lab_up.up(lab, k, features=(), journal=Journal(k))
    assert info.value.exit_code == 128 + sig
    assert str(info.value) == f"interrupted by {signal.Signals(sig).name}; rolled back"
    assert not k.ns and state_mod.load_state(lab.name) is None


def test_the_programs_own_sigterm_during_the_run_is_rolled_back_and_said_so(lab, monkeypatch):
    """A Terminated raised by the program's handler inside the run (as up's own handlers are swapped in)
    is rolled back like up's Interrupted, and told as one: exit 143."""
    k = FakeKernel()
    real = k.create_netns

    def create_then_terminated(name, tag, sysctls):
        real(name, tag, sysctls)
        raise signals.Terminated("interrupted by SIGTERM")

    k.create_netns = create_then_terminated
    with pytest.raises(rollback.Interrupted) as info:
        lab_up.up(lab, k, features=(), journal=Journal(k))
    assert info.value.exit_code == 143 and str(info.value) == "interrupted by SIGTERM; rolled back"
    assert not k.ns


def test_up_sigterm_during_the_change_exits_143(lab):
    """Up's own handler, during the change: SIGTERM's convention, not SIGINT's 130."""
    k = FakeKernel()
    real = k.create_netns

    def create_then_signalled(name, tag, sysctls):
        real(name, tag, sysctls)
        os.kill(os.getpid(), signal.SIGTERM)

    k.create_netns = create_then_signalled
    with pytest.raises(rollback.Interrupted) as info:
        lab_up.up(lab, k, features=(), journal=Journal(k))
    assert info.value.exit_code == 143 and "interrupted by SIGTERM; rolled back" in str(info.value)


def test_on_a_terminal_the_ctrl_c_line_starts_after_the_echoed_caret_and_a_sigterm_line_does_not(tmp_path):
    """A Ctrl-C typed on a terminal leaves ``^C`` echoed with no newline: netlab's line then starts on a line of
    its own there (in a pipe it is the only line, above). A SIGTERM echoes nothing: no empty line before it. A
    real process whose standard error is a pseudo-terminal."""
    path = tmp_path / "t.yaml"
    path.write_text("name: w\nnodes: [{name: n1}]\n")
    read = READ.format(path=path).encode()
    for raised, code, want in (("KeyboardInterrupt", 130, b"\r\nnetlab: interrupted" + read + b"\r\n"),
                               ("signals.Terminated('interrupted by SIGTERM')", 143,
                                b"netlab: interrupted by SIGTERM" + read + b"\r\n")):
        program = ("import sys, netlab.api\nfrom netlab import signals\nfrom netlab.cli.boundary import main\n"
                   f"def stopped(*a, **k):\n    raise {raised}\n"
                   f"netlab.api.load = stopped\nmain(['up', '-t', {str(path)!r}])\n")
        leader, follower = pty.openpty()
        try:
            proc = subprocess.run([sys.executable, "-c", program], stdin=subprocess.DEVNULL,
                                  stdout=subprocess.DEVNULL, stderr=follower, timeout=60, cwd=ROOT)
            os.close(follower)
            follower = -1
            said = b""
            while select.select([leader], [], [], 0)[0]:
                try:
                    chunk = os.read(leader, 4096)
                except OSError:  # EIO: the terminal's other side is closed and drained
                    break
                if not chunk:
                    break
                said += chunk
        finally:
            os.close(leader)
            if follower >= 0:
                os.close(follower)
        assert (proc.returncode, said) == (code, want), (proc, said)
