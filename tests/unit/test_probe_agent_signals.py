"""A terminal's Ctrl-C and the parent's SIGTERM reach the probe agent together: no traceback (no root).

Ctrl-C at a terminal sends SIGINT to the whole process group: `netlab probe`, its agent and the agent's workers.
The parent, interrupted, sends the agent SIGTERM at once (kernel.child), and the agent its workers. When both
signals have come before the agent runs again, Python runs their handlers in one pass, SIGINT's first: the agent's
``_stop`` raised KeyboardInterrupt after setting both to SIG_IGN, and SIGTERM's turn, left pending, found SIG_IGN:
``OSError: Signal 15 ignored due to race condition`` and a traceback on the terminal, above `netlab: interrupted`
(a QA loop of ``timeout -s INT 0.42 netlab probe``: 6 runs of 15). Here both signals are held (blocked) until
they have both come, then let in at once: the pass that tripped it, every time.
"""

from __future__ import annotations

import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

AGENT = """
import os, signal
from netlab import signals
from netlab.probe import agent

signals.terminate_as_interrupt()  # the program's hooks, which the forked agent and its workers keep
for sig in signals.STOPPING:  # as agent.run_job sets them (and the workers, forked from the agent, keep them)
    signal.signal(sig, agent._stop)
signal.pthread_sigmask(signal.SIG_BLOCK, signals.STOPPING)
os.kill(os.getpid(), signal.SIG{first})
os.kill(os.getpid(), signal.SIG{second})
try:
    signal.pthread_sigmask(signal.SIG_UNBLOCK, signals.STOPPING)  # both come in now, their handlers in one pass
    raise SystemExit("no signal came")
except KeyboardInterrupt as exc:
    stopped = exc
agent.Agent._stop_workers([], {{}}, {{}})  # the clean-up's first calls: Python runs what is pending here
os.kill(os.getpid(), signal.SIGINT)  # more during the clean-up (a second Ctrl-C, timeout's to the group): dropped
os.kill(os.getpid(), signal.SIGTERM)
agent.Agent._stop_workers([], {{}}, {{}})
print(stopped)
"""


def run_agent(first: str, second: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=ROOT)
    return subprocess.run([sys.executable, "-c", AGENT.format(first=first, second=second)], env=env,
                          capture_output=True, text=True, timeout=60)


def test_ctrl_c_and_the_parents_sigterm_together_stop_the_agent_once_without_a_traceback():
    done = run_agent("INT", "TERM")
    assert done.stderr == ""  # was: Traceback ... OSError: Signal 15 ignored due to race condition
    assert (done.returncode, done.stdout) == (0, "probe agent: SIGINT\n")  # the first signal stops it; no other


def test_the_parents_sigterm_then_a_ctrl_c_stop_the_agent_once_without_a_traceback():
    done = run_agent("TERM", "INT")  # Python runs SIGINT's handler first whatever the order they came in
    assert done.stderr == ""
    assert (done.returncode, done.stdout) == (0, "probe agent: SIGINT\n")
