"""Ctrl-C at a terminal during `netlab probe`: its one line, no traceback, when the agent gets both signals at once.

A terminal's Ctrl-C is SIGINT to the whole process group: netlab and its probe agent. netlab, interrupted, sends
the agent SIGTERM at once. An agent that had not run meanwhile (a busy machine: two cores, netlab, the agent, the
lab's echo server) found both pending, and Python ran their handlers in one pass, SIGINT's first: it set both to
SIG_IGN, and SIGTERM's turn printed ``OSError: Signal 15 ignored due to race condition`` with a traceback above
`netlab: interrupted` (a QA loop of ``timeout -s INT 0.42 netlab probe``: 12 runs of 30). Here the agent is held
stopped (SIGSTOP) until both signals wait for it, then let go: that pass, every time. (The same without a kernel:
tests/unit/test_probe_agent_signals.py.)
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from helpers import in_netns, wait_for, without_turn_waits

pytestmark = pytest.mark.root

SIGINT_AND_SIGTERM = 1 << (signal.SIGINT - 1) | 1 << (signal.SIGTERM - 1)


def children(pid: int) -> list[int]:
    with open(f"/proc/{pid}/task/{pid}/children") as f:
        return [int(p) for p in f.read().split()]


def status(pid: int, field: str) -> str:
    with open(f"/proc/{pid}/status") as f:
        return next(line.split()[1] for line in f if line.startswith(f"{field}:"))


def pending(pid: int) -> int:
    """The signals sent to process ``pid`` that wait for it (its ShdPnd mask)."""
    return int(status(pid, "ShdPnd"), 16)


def test_ctrl_c_that_reaches_the_agent_with_netlabs_sigterm_is_one_line(labs, tmp_path):
    lab = labs.name("pgx")
    labs.up(f"name: {lab}\nnodes: [{{name: n1}}]\npods:\n  - {{name: c, node: n1}}\n  - {{name: w, node: n1}}\n")
    in_netns(f"{lab}-w", "iptables", "-A", "INPUT", "-p", "tcp", "-j", "DROP", check=True)  # the probe waits there

    def as_a_terminal_starts_it() -> None:  # SIGINT as a shell gives it, whatever this test process inherited
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGINT])

    argv = [sys.executable, "-m", "netlab", "probe", "--lab", lab, "--proto", "tcp", "--timeout", "30"]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, process_group=0,
                            preexec_fn=as_a_terminal_starts_it)
    agent = 0
    try:
        # The agent at work: its connection to w waits for the probe's 30 s timeout.
        assert wait_for(lambda: in_netns(f"{lab}-c", "ss", "-tnH", "state", "syn-sent").stdout.strip() != "",
                        timeout=60, step=0.02), "the probe's agent sent no SYN to w"
        [agent] = children(proc.pid)
        os.kill(agent, signal.SIGSTOP)
        assert wait_for(lambda: status(agent, "State") == "T", timeout=5, step=0.002)  # stopped: no signal runs
        os.killpg(proc.pid, signal.SIGINT)  # the terminal's Ctrl-C; netlab sends the agent its SIGTERM
        assert wait_for(lambda: pending(agent) & SIGINT_AND_SIGTERM == SIGINT_AND_SIGTERM, timeout=1, step=0.002), \
            f"netlab sent the agent no SIGTERM: pending {pending(agent):#x}"
        os.kill(agent, signal.SIGCONT)  # both come in at once
        out, err = proc.communicate(timeout=30)
    finally:
        if agent and os.path.exists(f"/proc/{agent}"):
            os.kill(agent, signal.SIGCONT)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert (proc.returncode, without_turn_waits(err)) == (130, "netlab: interrupted\n"), (out, err)
