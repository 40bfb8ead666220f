"""Input written to a program that exits without reading it kills no caller, whatever the caller's SIGPIPE
(kernel/sigpipe.py). Python ignores SIGPIPE from its start; a program using netlab's API may have set it back to
SIG_DFL, and the write's EPIPE came with a SIGPIPE that ended that program silently (status 141): an
``iptables-restore`` stopping at a bad line of a large payload, a ``dot`` that failed, a command given input it
never read, an echo server closing its control socket before reading a request.

Each kind of write runs in a child whose SIGPIPE is the default, 1 MiB to a reader that is gone (more than a
pipe or a socket holds): subprocess.run's input (kernel/netns.run_in_netns, graph.run_dot), a Popen's stdin
(Lab.exec's input, the echo launcher's specs), a socket (the echo server's control socket)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from helpers import write_program
from netlab.api import lab_pods

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

CALLER = """
import contextlib, json, os, signal, socket, subprocess, sys, threading
signal.signal(signal.SIGPIPE, signal.SIG_DFL)
BIG = "x" * (1 << 20)
kind = sys.argv[1]
if kind == "run":
    from netlab.kernel import netns
    netns.entered = lambda name: contextlib.nullcontext()  # no namespace needed: the write is what is tested
    print("run_in_netns:", netns.run_in_netns("none", ["/bin/true"], input=BIG.encode(), check=False).returncode)
    from netlab.graph import run_dot
    netns.TOOL_DIRS = (os.environ["FAKE_TOOLS"],)  # the failing dot below, where netlab looks for its programs
    try:
        run_dot(BIG, "svg")
    except Exception as exc:
        print("run_dot:", exc)
elif kind == "stdin":
    from netlab.api.lab_pods import _run_captured
    from netlab.workload.launch import send_specs
    class Enter:
        fds = ()
        def __call__(self):
            pass
    print("exec:", _run_captured(["/bin/true"], BIG, 60, False, None, Enter()).returncode)
    launcher = subprocess.Popen(["/bin/true"], stdin=subprocess.PIPE)
    send_specs(launcher, [{"pad": BIG}])
    print("send_specs:", launcher.wait())
elif kind == "socket":
    from netlab.workload.launch import ask, control_path
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(control_path("sq-ask", create=True))
    server.listen()
    def close_unread():
        conn, _ = server.accept()
        conn.close()
    threading.Thread(target=close_unread).start()
    print("ask:", ask("sq-ask", {"pad": BIG}))
print("sigpipe pending:", signal.SIGPIPE in signal.sigpending(), "blocked:",
      signal.SIGPIPE in signal.pthread_sigmask(signal.SIG_BLOCK, []))
"""


@pytest.mark.parametrize("kind, lines", [
    ("run", ["run_in_netns: 0", "run_dot: {path}/dot -Tsvg failed: no input read "
                                "(is graphviz installed with its cairo/png plugins?)"]),
    ("stdin", ["exec: 0", "send_specs: 0"]),
    ("socket", ["ask: None"]),
])
def test_input_to_a_reader_that_is_gone_kills_no_caller_whose_sigpipe_is_the_default(tmp_path, kind, lines):
    write_program(tmp_path / "dot", "#!/bin/sh\necho 'no input read' >&2\nexit 1\n")
    env = dict(os.environ, FAKE_TOOLS=str(tmp_path), NETLAB_STATE_DIR=str(tmp_path / "state"))
    proc = subprocess.run([sys.executable, "-c", CALLER, kind], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)
    # Before: the caller died of SIGPIPE (-13) at the first write, saying nothing.
    assert proc.returncode == 0, (proc.returncode, proc.stdout, proc.stderr)
    assert proc.stdout.splitlines() == [line.format(path=tmp_path) for line in lines] + [
        "sigpipe pending: False blocked: False",  # the signal the write raised was taken, the mask is as it was
    ], proc.stdout


class _Enter:
    fds = ()

    def __call__(self) -> None:
        pass


def test_exec_input_a_command_does_not_read_is_no_error_and_its_timeout_holds():
    """Lab.exec's input: a command that exits without reading it returned its status (it raised BrokenPipeError,
    in any caller); one that neither reads nor exits is killed at the timeout (the write waited for it to end)."""
    big = "x" * (1 << 20)
    assert lab_pods._run_captured(["/bin/sh", "-c", "exit 4"], big, 60, False, None, _Enter()).returncode == 4
    with pytest.raises(subprocess.TimeoutExpired):
        lab_pods._run_captured(["/bin/sleep", "20"], big, 0.2, False, None, _Enter())
