"""A stop signal (Ctrl-C, SIGTERM) that lands while ``nsmod.create_netns`` has its thread in the namespace it makes
(root; each case in a forked child, whose thread may be left elsewhere).

``create_netns`` enters a new namespace with ``unshare`` and goes home with ``setns`` in a ``finally``. Python runs
a signal's handler in the main thread between two of its steps: one that came right after ``unshare`` returned
(before the ``try``), or as the ``finally`` began (before ``setns`` ran), raised there, and the thread stayed in
the new namespace for the rollback, which then read and deleted namespaces from the wrong place. The signal is
sent by the process to itself inside the libc call's wrapper, so it is taken at that very point each time (the
signal after ``mount`` is the control: inside the ``try``, the thread went home before). It now waits until the
thread is home, then is raised: the namespace is whole by then, for the caller's rollback.
"""

from __future__ import annotations

import os
import pickle
import signal

import pytest

from helpers import ip, unique_lab
from netlab.kernel import libc
from netlab.kernel import netns as nsmod

pytestmark = pytest.mark.root


class _Signalling:
    """libc, whose ``call`` sends this process SIGINT: right after the real call returned (``after``), or just
    before it runs (the first time only)."""

    def __init__(self, real, call: str, after: bool):
        self.real, self.call, self.after, self.sent = real, call, after, False

    def __getattr__(self, name):
        real = getattr(self.real, name)
        if name != self.call:
            return real

        def signalled(*args):
            if not self.after and not self.sent:
                self.sent = True
                os.kill(os.getpid(), signal.SIGINT)
            ret = real(*args)
            if self.after and not self.sent:
                self.sent = True
                os.kill(os.getpid(), signal.SIGINT)
            return ret
        return signalled


def _child(name: str, call: str, after: bool) -> dict:
    signal.signal(signal.SIGINT, signal.default_int_handler)
    home = os.stat("/proc/thread-self/ns/net").st_ino
    nsmod.ensure_netns_dir()  # its own mount first: the signal comes in create_netns's own calls
    real = libc.handle()
    fake = _Signalling(real, call, after)
    libc.handle = lambda: fake
    raised = None
    try:
        nsmod.create_netns(name, nsmod.make_tag("ll", "0" * 32), dir_ready=True)
    except KeyboardInterrupt:
        raised = "KeyboardInterrupt"
    return {"raised": raised, "home": os.stat("/proc/thread-self/ns/net").st_ino == home,
            "mounted": nsmod.is_netns_mount(name), "there": os.path.lexists(nsmod.netns_path(name))}


def _in_child(*args) -> dict:
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.close(r)
            os.write(w, pickle.dumps(_child(*args)))
            code = 0
        finally:
            os._exit(code)
    os.close(w)
    with os.fdopen(r, "rb") as fh:
        data = fh.read()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0 and data, status
    return pickle.loads(data)


@pytest.mark.parametrize("call, after", [("unshare", True), ("mount", True), ("setns", False)])
def test_a_signal_while_create_netns_is_in_the_new_namespace_leaves_its_thread_home(call, after):
    name = unique_lab("ll")
    try:
        got = _in_child(name, call, after)
        # the signal's exception, once the thread is home: the namespace made by then (mounted, tagged), which
        # the caller's rollback takes (lab/up.py: one whose tag is its run's)
        assert got == {"raised": "KeyboardInterrupt", "home": True, "mounted": True, "there": True}, got
        assert nsmod.read_tag(name) == nsmod.make_tag("ll", "0" * 32)
    finally:
        if nsmod.is_netns_mount(name):
            ip("netns", "delete", name)
