"""A stop signal ignored as one of netlab's signal blocks begins (signals.handled, signals.held) stays ignored in it:
a SIGINT that netlab's parent ignored (a job a shell script puts in the background: its Ctrl-C is not the job's).
The block's handler set over it took that SIGINT for a stop (an ``up`` rolled back), and the CNI plugins a ``down``
started meanwhile were born with SIGINT at its default, not ignored (QA: a DEL "killed by SIGINT" when the down's
group got one)."""

from __future__ import annotations

import os
import signal

from helpers import write_program
from netlab.errors import down_command
from netlab import signals
from netlab.cni import invoke
from netlab.cni.invoke import CallLog, exec_plugin


def _ignored(status: str) -> int:
    return int(status.split("SigIgn:")[1].split()[0], 16)


def test_a_sigint_ignored_as_a_held_block_begins_stays_ignored_and_so_it_is_for_the_plugins_it_starts(tmp_path):
    plugin = tmp_path / "sigs"
    write_program(plugin, "#!/bin/sh\ncat >/dev/null\nexec grep '^SigIgn:' /proc/self/status\n")
    log = tmp_path / "calls.jsonl"
    old = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with signals.held() as came:
            assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
            assert signal.getsignal(signal.SIGTERM) not in (signal.SIG_IGN, signal.SIG_DFL)  # the block's
            os.kill(os.getpid(), signal.SIGINT)
            exec_plugin(CallLog(str(log)), pod="p", network="n", plugin_path=str(plugin), command="DEL", conf={},
                        env={}, node_netns=None)
        assert came == []
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, old)
    (call,) = invoke.read_log(str(log))
    assert _ignored(call["stdout"]) & (1 << (signal.SIGINT - 1)), call["stdout"]


def test_a_handled_block_still_takes_a_signal_that_was_not_ignored():
    came: list[int] = []
    with signals.handled(lambda signum, frame: came.append(signum)):
        os.kill(os.getpid(), signal.SIGTERM)
        os.kill(os.getpid(), signal.SIGINT)
    assert sorted(came) == [signal.SIGINT, signal.SIGTERM]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_watcher_started_with_sigint_ignored_is_ended_by_sigterm_not_by_a_sigint(monkeypatch):
    """`up --watch` in a script's background: the terminal's Ctrl-C is not its own; SIGTERM (systemd's stop, a CI
    job's cancel) still ends it. Before, a SIGINT ended the watch once it was armed, though up's apply ignored it."""
    import contextlib

    from netlab.api import watch as watch_mod

    seen: list[bool] = []

    class Watcher:
        def __init__(self, *args, **kwargs):
            self.stop, self.stopped_by, self.taken_down, self.replaced, self.armed = False, None, False, None, None

        def run(self):
            self.armed()
            signal.raise_signal(signal.SIGINT)
            seen.append(self.stop)
            signal.raise_signal(signal.SIGTERM)
            seen.append(self.stop)

        def close(self):
            pass

        def unapplied(self):
            return ""

    lines: list[str] = []
    monkeypatch.setattr(watch_mod, "Watcher", Watcher)
    monkeypatch.setattr(watch_mod, "WatcherLock", lambda name: contextlib.nullcontext())
    old = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        watch_mod.watch("t.yaml", "lab", lines.append)
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, old)
    assert seen == [False, True]
    assert lines == [f"stopped watching lab lab (SIGTERM); it stays up (`{down_command('lab')}` takes it down)"]
