"""Programs netlab runs in a process group of their own, out of reach of the group's Ctrl-C from their first instant.

A terminal's Ctrl-C (SIGINT) goes to its foreground process group, netlab's, and netlab decides what it stops
(signals.py, lab/up.py). The programs it runs for the kernel (``iptables-restore``, ``nft -f -``, their
``--version``) start in a group of their own, so that the group's SIGINT does not kill one halfway through a rule
set that ``up --watch``'s apply or repair waits for. The child moves itself, between fork and exec (setpgid):
until then it is still in netlab's group, and CI saw a Ctrl-C land in that instant, kill a node's restore
("iptables-restore (nat) failed: no error message") and roll the watcher's apply back.

So the child is born with SIGINT and SIGTERM blocked: the forking thread blocks them for the moment of the fork
(a signal mask is inherited through fork and exec, and fork clears the child's pending set), and a group signal
that reaches the child in that instant stays pending, never delivered. iptables' and nft's programs keep the mask
(a test sends them both, pending, before their exec): netlab ends them at their timeout, or when its own wait is
cut short, with SIGKILL. The forking thread's own stop signals wait the few microseconds of the fork and are taken
as usual after it.

Not CNI plugins (a session of their own: cni/invoke.py): Go's runtime unblocks SIGINT and SIGTERM as it starts,
and Debian's plugins, written in Go, then take a signal left pending in that instant all the same; a blocked mask
would only be inherited by what a plugin starts."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Sequence
from typing import Any

from netlab.kernel.sigpipe import run_fed

STOPS = frozenset({signal.SIGINT, signal.SIGTERM})


def popen(argv: Sequence[str], **kwargs: Any) -> subprocess.Popen:
    """``subprocess.Popen(argv, **kwargs)``, the program in a process group of its own (the same session) and
    deaf to SIGINT and SIGTERM from its birth."""
    old = signal.pthread_sigmask(signal.SIG_BLOCK, STOPS)
    try:
        proc = subprocess.Popen(list(argv), process_group=0, **kwargs)
    except BaseException:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)
        raise
    try:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)  # a stop signal that came during the fork is taken here
    except BaseException:
        # ... before the caller has the program to end: its group (its pid: exec came after its setpgid)
        # is killed and waited for here, as the caller's cut-short wait would have
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
