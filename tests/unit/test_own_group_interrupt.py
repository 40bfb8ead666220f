"""A Ctrl-C that lands while own_group.popen forks is taken as the mask is put back, and the program it
started (deaf to it) was lost: not killed, not waited for, its pipes closed by the collector."""

from __future__ import annotations

import os
import signal
import subprocess

import pytest

from netlab.kernel import own_group


def test_a_ctrl_c_during_the_fork_leaves_no_program_running(monkeypatch):
    made: list[subprocess.Popen] = []

    class Popen(subprocess.Popen):
        def __init__(self, *args, **kw):
            super().__init__(*args, **kw)
            made.append(self)
            os.kill(os.getpid(), signal.SIGINT)  # the group's Ctrl-C, in the instant of the fork: pending

    monkeypatch.setattr(subprocess, "Popen", Popen)
    with pytest.raises(KeyboardInterrupt):
        own_group.run(["sleep", "30"], timeout=60)
    try:
        assert made and made[0].poll() is not None, "sleep 30 runs on, deaf to SIGINT, nobody waiting for it"
    finally:
        for proc in made:
            proc.kill()
            proc.wait()
