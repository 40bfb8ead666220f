"""Programs netlab runs in a process group of their own, out of reach of the group's Ctrl-C from their first instant.

A terminal's Ctrl-C (SIGINT) goes to its foreground process group, netlab's, and netlab decides what it stops
(signals.py, lab/up.py). The programs it runs for the kernel (``iptables-restore``, ``nft -f -``, their
``--version``) start in a group of their own, so that the group's SIGINT does not kill one halfway through a rule
set that ``up --watch``'s apply or repair waits for. The child moves itself, between fork and exec (setpgid):
until then it is still in netlab's group, and CI saw a Ctrl-C land in that instant, kill a node's restore
("iptables-restore (nat) failed: no error message") and roll the watcher's apply back.

So the child is born with SIGINT, SIGTERM and SIGHUP (a closed terminal's, to its group) blocked: the forking
thread blocks them for the moment of the fork (a signal mask is inherited through fork and exec, and fork
clears the child's pending set), and a group signal that reaches the child in that instant stays pending, never
delivered. iptables' and nft's programs keep the mask
(a test sends them both, pending, before their exec): netlab ends them at their timeout, or when its own wait is
cut short, with SIGKILL. The forking thread's own stop signals wait the few microseconds of the fork and are taken
as usual after it; so does the main thread's handler, which Python runs wherever the main thread is when another
thread took the process's signal (:func:`stops_wait`), so that it never raises before the caller has the program.

Not CNI plugins (a session of their own: cni/invoke.py): Go's runtime unblocks SIGINT and SIGTERM as it starts,
and Debian's plugins, written in Go, then take a signal left pending in that instant all the same; a blocked mask
would only be inherited by what a plugin starts."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
from collections.abc import Iterator, Sequence
from typing import Any

from netlab.kernel.sigpipe import run_fed

STOPS = frozenset({signal.SIGINT, signal.SIGTERM, signal.SIGHUP})  # netlab.signals.STOPPING (below it)


@contextlib.contextmanager
def stops_wait() -> Iterator[None]:
    """SIGINT and SIGTERM wait for the block, in the main thread (where Python raises a handler's exception; in
    another thread none is raised, and the block runs as it is): each is recorded, and the first sent again once
    the handlers are back, to take effect as it would have (netlab.signals.held, above the kernel package). One
    ignored as the block begins stays ignored (a SIGINT netlab's parent ignored)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    came: list[int] = []
    old = {sig: signal.signal(sig, lambda signum, frame: came.append(signum)) for sig in STOPS
           if signal.getsignal(sig) is not signal.SIG_IGN}
    try:
        yield
    finally:
        for sig, previous in old.items():
            signal.signal(sig, previous)
        if came:
            signal.raise_signal(came[0])


def popen(argv: Sequence[str], **kwargs: Any) -> subprocess.Popen:
    """``subprocess.Popen(argv, **kwargs)``, the program in a process group of its own (the same session) and
    deaf to SIGINT and SIGTERM from its birth."""
    proc = None
    try:
        # The forking thread's mask does not hold off a signal sent to the process: another thread (netlab's node
        # workers, pytest-xdist's) takes it, and Python runs its handler in the main thread wherever that is,
        # inside Popen too once the child exists, before the caller has the program to end. So the main thread's
        # handlers wait for the program too (stops_wait).
        with stops_wait():
            old = signal.pthread_sigmask(signal.SIG_BLOCK, STOPS)
            try:
                proc = subprocess.Popen(list(argv), process_group=0, **kwargs)
            finally:
                signal.pthread_sigmask(signal.SIG_SETMASK, old)  # a stop signal that came meanwhile is taken here
    except BaseException:
        # ... once the program was made, before the caller has it to end: its group (its pid: exec came after its
        # setpgid) is killed and waited for here, as the caller's cut-short wait would have
        if proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            with proc:  # its pipes closed, the program waited for
                pass
        raise
    return proc


def run(argv: Sequence[str], input: bytes | str | None = None, timeout: float | None = None, check: bool = False,
        **kwargs: Any) -> subprocess.CompletedProcess:
    """``subprocess.run(argv, input=input, capture_output=True, ...)`` with the program started by :func:`popen`;
    stdin is ``/dev/null`` when there is no input (it reads nothing from the terminal, from a group that is not
    the terminal's)."""
    return run_fed(argv, input, timeout, check, start=popen, **kwargs)
