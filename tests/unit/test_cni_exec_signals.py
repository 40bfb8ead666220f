"""A plugin call and the signals around it (cni/invoke.py, cni/plugin_group.py), no root, small shell plugins:

- the conf written to a plugin that exited without reading it kills no caller, whatever the caller's SIGPIPE:
  Python ignores SIGPIPE from its start, but a program using netlab's API may have set it back to SIG_DFL (as many
  do), and the write's EPIPE came with a SIGPIPE that ended that program;
- a call past its deadline signals the plugin's process group before the plugin is reaped: a reaped leader's pid,
  the group's id, may be another process group's by the time the group is killed (a zombie leader keeps it)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from helpers import write_program
from netlab.cni import invoke, plugin_group
from netlab.cni.invoke import CallLog, PluginFailed

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(invoke.__file__ + "/..")))

# The caller: SIGPIPE at its default, one ADD of a conf of 1 MB (more than a pipe holds) to the plugin.
CALLER = """
import signal, sys
signal.signal(signal.SIGPIPE, signal.SIG_DFL)
from netlab.cni.invoke import CallLog, PluginFailed, exec_plugin
conf = {"cniVersion": "1.0.0", "pad": "x" * (1 << 20)}
try:
    exec_plugin(CallLog(None), pod="a", network="n", plugin_path=sys.argv[1], command="ADD", conf=conf, env={},
                node_netns=None, timeout=120)
except PluginFailed as exc:
    print(exc)
print("sigpipe pending:", signal.SIGPIPE in signal.sigpending(), "blocked:",
      signal.SIGPIPE in signal.pthread_sigmask(signal.SIG_BLOCK, []))
"""


def test_a_plugin_that_exits_unread_fails_the_call_in_a_caller_whose_sigpipe_is_the_default(tmp_path):
    plugin = tmp_path / "qexit"
    write_program(plugin, "#!/bin/sh\necho 'no conf read' >&2\nexit 3\n")
    proc = subprocess.run([sys.executable, "-c", CALLER, str(plugin)], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    # Before: the caller died of SIGPIPE (-13), saying nothing.
    assert proc.returncode == 0, (proc.returncode, proc.stderr)
    assert proc.stdout.splitlines() == [
        "pod a: CNI plugin qexit ADD: failed (exit 3); stderr: no conf read",
        "sigpipe pending: False blocked: False",  # the signal the write raised was taken, the mask is as it was
    ], proc.stdout


def test_a_call_past_its_deadline_kills_the_plugins_group_before_the_plugin_is_reaped(tmp_path, monkeypatch):
    """The plugin exits at once, leaving a process that holds its stdout and stderr: the call runs to its deadline,
    and the group is killed then. The leader has exited before the exchange begins (waited for without reaping),
    so that at the deadline it is a zombie: netlab must not reap it before the group's signal."""
    plugin = tmp_path / "qheld"
    write_program(plugin, "#!/bin/sh\nsleep 60 &\nexit 0\n")
    exchange, killpg = invoke._exchange, os.killpg
    seen: list[str] = []

    def exchange_after_exit(proc, *args):
        os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT)  # the leader has exited: a zombie, not reaped
        return exchange(proc, *args)

    def killpg_seen(pgid, sig):
        try:
            os.waitid(os.P_PID, pgid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
            seen.append("leader not reaped")
        except ChildProcessError:
            seen.append("leader reaped: its pid may be another's by now")
        killpg(pgid, sig)

    monkeypatch.setattr(invoke, "_exchange", exchange_after_exit)
    monkeypatch.setattr(os, "killpg", killpg_seen)
    with pytest.raises(PluginFailed) as exc:
        invoke.exec_plugin(CallLog(None), pod="a", network="n", plugin_path=str(plugin), command="ADD",
                           conf={"cniVersion": "1.0.0"}, env={}, node_netns=None, timeout=0.5)
    assert seen == ["leader not reaped"]
    assert "qheld ADD: it exited 0, but a process it left running held its stdout and stderr open" in str(exc.value)


class _Proc:
    """What kill_group is given: a plugin's Popen, its waits recorded."""

    pid = 2 ** 22 + 1  # above pid_max's highest value: no process's

    def __init__(self, events: list[str], returncode: int | None = None):
        self.events, self.returncode = events, returncode

    def wait(self, timeout: float | None = None) -> int:
        self.events.append("wait")
        return 0

    def poll(self) -> int | None:
        self.events.append("poll")
        return 0


def test_the_group_is_killed_before_the_plugin_is_waited_for_and_never_after_it_was_reaped(monkeypatch):
    events: list[str] = []
    children = {_Proc.pid}  # this process's children not reaped yet
    monkeypatch.setattr(os, "killpg", lambda pgid, sig: events.append(f"killpg {pgid}"))
    monkeypatch.setattr(plugin_group, "unreaped", lambda pid: pid in children)
    plugin_group.kill_group(_Proc(events))
    assert events == [f"killpg {_Proc.pid}", "wait"]
    events.clear()
    plugin_group.kill_group(_Proc(events, returncode=0))  # reaped already: its pid may be another's
    assert events == ["wait"]
    events.clear()
    children.clear()  # reaped by another's waitpid(-1), or by the kernel (SIGCHLD ignored)
    plugin_group.kill_group(_Proc(events))
    assert events == ["wait"]
