"""A stop signal whose exception a finalizer swallowed is the program's end, not a success (no root).

Python runs a signal's handler wherever the main thread is: inside an object's ``__del__`` (or an import's
module-lock callback) the exception it raises is dropped, and the command went on. The program's handler keeps
the signal (netlab/signals.py ``_raised``), but only ``up`` and ``down`` asked for it again (signals.check):
every other command (status, probe, get ...) finished and exited 0 although Ctrl-C was pressed or `timeout`
sent SIGTERM. Now the program's end (netlab/launch.py) says it: one line, 130 or 143. A command that ends on a
stop signal as its normal end takes it (signals.taken): `capture` (as tcpdump) and `up --watch` still exit 0.
Each case runs the real program (launch.main) in a process of its own, with a real signal.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from netlab.errors import down_command
from netlab import signals

UNIT = os.path.dirname(os.path.abspath(__file__))

# A command that drops an object whose finalizer is where the signal's handler runs (its exception swallowed),
# then returns normally (or exits with CODE), as a command that never asks would.
SWALLOWED = """
import signal, sys
import netlab.cli
sig, code = sys.argv[1], int(sys.argv[2])
class Dropped:
    def __del__(self):
        if sig != "none":
            signal.raise_signal(getattr(signal, sig))
            sum(range(10))  # the handler runs here, inside the finalizer
def command():
    Dropped()
    print("done", flush=True)
    if code:
        sys.exit(code)
netlab.cli.main = command
from netlab.launch import main
main()
"""


def _program(code: str, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.path.dirname(os.path.dirname(UNIT)), UNIT]))
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=60, env=env)


@pytest.mark.parametrize("sig, code, want", [
    ("SIGINT", 0, (130, "netlab: interrupted by SIGINT\n")),
    ("SIGTERM", 0, (143, "netlab: interrupted by SIGTERM\n")),
    ("SIGTERM", 3, (3, "")),  # a command that failed keeps its own status
    ("none", 0, (0, "")),
])
def test_a_signal_a_finalizer_swallowed_is_the_programs_line_and_status_not_a_success(sig, code, want):
    proc = _program(SWALLOWED, sig, str(code))
    assert proc.stdout == "done\n" and (proc.returncode, proc.stderr) == want, proc


# `netlab capture` with its kernel and socket faked: the program's own handler turns the signal into the
# exception that stops the capture, as a real Ctrl-C or `timeout`'s SIGTERM does.
CAPTURE = """
import os, signal, sys
from types import SimpleNamespace
import netlab.cli.trace as cli_trace
from netlab.trace import capture as cap
from netlab.trace import kernel as tkernel
from netlab.trace.capture import Frame
sig = getattr(signal, sys.argv[1])
class Kernel:
    def __init__(self, *args, **kwargs): pass
    def __enter__(self): return self
    def __exit__(self, *exc): return False
    def links(self, netns): return {"eth0": None}
    ended = None
def live(capture, count, timeout, show, note=None):
    show(Frame("lab-a", "eth0", "in", 1.0, b"\\x00" * 14, 14))
    os.kill(os.getpid(), sig)
    sum(range(10))
    raise AssertionError("no stop signal")
lab = SimpleNamespace(name="lab", mode="vxlan", topo=SimpleNamespace(
    network=SimpleNamespace(vxlan=SimpleNamespace(port=8472))))
cli_trace.require_root = lambda: None
cli_trace._running_lab = lambda name, topology: lab
cli_trace._netns_of = lambda lab, name: "lab-a"
tkernel.LiveKernel = cap.Capture = Kernel
cap.scapy_layers = lambda port: None
cap.live = live
cap.describe = lambda frame, port, verbose=False: "frame 1"
sys.argv = ["netlab", "capture", "--lab", "lab", "a:eth0"]
from netlab.launch import main
main()
"""


@pytest.mark.parametrize("sig", ["SIGINT", "SIGTERM"])
def test_capture_takes_the_signal_as_its_end_and_exits_0_as_tcpdump(sig):
    proc = _program(CAPTURE, sig)
    assert (proc.returncode, proc.stdout) == (0, "frame 1\n") and "interrupted" not in proc.stderr, proc


def test_a_watch_stopped_by_a_signal_takes_one_kept_before_it(monkeypatch):
    """`up --watch` ends on Ctrl-C or SIGTERM with exit 0 (its own handler's): a signal the program kept whose
    exception a finalizer swallowed before the watch began (the user pressed Ctrl-C again) is its end too."""
    import contextlib

    from netlab.api import watch as watch_mod

    class Watcher:
        def __init__(self, *args, **kwargs):
            self.stop, self.stopped_by, self.taken_down, self.replaced, self.armed = False, None, False, None, None

        def run(self):
            self.armed()
            signal.raise_signal(signal.SIGINT)  # the watcher's handler: the loop ends
            assert self.stop

        def close(self):
            pass

        def unapplied(self):
            return ""

    lines: list[str] = []
    monkeypatch.setattr(signals, "_raised", [signal.SIGINT])  # the one a finalizer swallowed
    monkeypatch.setattr(watch_mod, "Watcher", Watcher)
    monkeypatch.setattr(watch_mod, "WatcherLock", lambda name: contextlib.nullcontext())
    watch_mod.watch("t.yaml", "lab", lines.append)
    assert lines == [f"stopped watching lab lab (SIGINT); it stays up (`{down_command('lab')}` takes it down)"]
    assert signals.unsaid() is None and signal.getsignal(signal.SIGINT) is not None


def test_exec_does_not_run_the_command_after_a_signal_a_finalizer_swallowed(monkeypatch):
    """`exec` ends by becoming the command (execvp): the program's end never comes to say a kept signal, and the
    command ran as if no Ctrl-C had been pressed. It asks before it replaces itself: 130, nothing run."""
    import contextlib
    from types import SimpleNamespace

    from cli_inprocess import run_cli

    import netlab.cli.workload as cli_workload

    ran: list[list[str]] = []
    target = SimpleNamespace(uts="pinned", netns="x-b", opened=lambda: contextlib.nullcontext(lambda: None))
    monkeypatch.setattr(cli_workload, "require_root", lambda: None)
    monkeypatch.setattr(cli_workload, "attached", lambda name, topology: SimpleNamespace(
        name="x", state=lambda: None, model=None))
    monkeypatch.setattr("netlab.api.exec.exec_target", lambda state, model, name: target)
    monkeypatch.setattr(os, "execvp", lambda program, argv: ran.append(argv))
    # What readies the exec readies this process: every signal at its default, SIGPIPE's too. The pytest worker
    # then died of SIGPIPE (node down) in a later test that wrote to a plugin that had exited (test_trust_chain).
    monkeypatch.setattr("netlab.kernel.spawning.default_signals", lambda: ran.append(["default_signals"]))
    monkeypatch.setattr(signals, "_raised", [signal.SIGINT])  # the one a finalizer swallowed
    got = run_cli("exec", "--lab", "x", "b", "--", "true")
    assert (got.returncode, got.stderr, ran) == (130, "netlab: interrupted by SIGINT\n", []), got
    monkeypatch.setattr(signals, "_raised", [])
    assert run_cli("exec", "--lab", "x", "b", "--", "true").returncode == 0 and ran == [["default_signals"], ["true"]]
    assert signal.getsignal(signal.SIGPIPE) is signal.SIG_IGN  # as Python set it: this process's own
