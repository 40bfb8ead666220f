"""A Ctrl-C that lands while own_group.popen forks is taken as the mask is put back, and the program it
started (deaf to it) was lost: not killed, not waited for, its pipes closed by the collector."""

from __future__ import annotations

import os
import signal
import subprocess

import pytest

from netlab.kernel import own_group


def _sent_to_the_process() -> None:
    """The group's Ctrl-C in the instant of the fork: pending on the forking thread, which blocks it."""
    os.kill(os.getpid(), signal.SIGINT)


def _run_by_python_mid_popen() -> None:
    """The forking thread blocks SIGINT, but a Ctrl-C is sent to the process: another thread (netlab's node
    workers, pytest-xdist's) takes it, and Python runs the main thread's handler wherever that is, inside Popen
    once the child exists (a CI flake of the case above: 1 run in 8 under xdist). Run there by hand, as Python
    would: its KeyboardInterrupt left the program running, deaf, nobody waiting for it."""
    handler = signal.getsignal(signal.SIGINT)
    assert callable(handler)
    handler(signal.SIGINT, None)


@pytest.mark.parametrize("ctrl_c", [_sent_to_the_process, _run_by_python_mid_popen])
def test_a_ctrl_c_during_the_fork_leaves_no_program_running(monkeypatch, ctrl_c):
    made: list[subprocess.Popen] = []

    class Popen(subprocess.Popen):
        def __init__(self, *args, **kw):
            super().__init__(*args, **kw)
            made.append(self)
            ctrl_c()

    monkeypatch.setattr(subprocess, "Popen", Popen)
    with pytest.raises(KeyboardInterrupt):
        own_group.run(["sleep", "30"], timeout=60)
    try:
        assert made and made[0].poll() is not None, "sleep 30 runs on, deaf to SIGINT, nobody waiting for it"
    finally:
        for proc in made:
            proc.kill()
            proc.wait()


def test_a_sigint_ignored_stays_ignored_while_a_program_starts(monkeypatch):
    seen: list[object] = []

    class Popen(subprocess.Popen):
        def __init__(self, *args, **kw):
            seen.append(signal.getsignal(signal.SIGINT))
            super().__init__(*args, **kw)

    monkeypatch.setattr(subprocess, "Popen", Popen)
    old = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        assert own_group.run(["true"], timeout=60).returncode == 0
    finally:
        signal.signal(signal.SIGINT, old)
    assert seen == [signal.SIG_IGN]
