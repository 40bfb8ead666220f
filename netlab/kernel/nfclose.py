"""Netfilter netlink sockets let go on a thread of their own: their last close waits for the kernel.

When the last reference to a ``NETLINK_NETFILTER`` socket goes, nf_tables'
``NETLINK_URELEASE`` notifier (``nft_rcv_nl_event``) first waits for the
work that frees what earlier commits took out of a ruleset (rules of a
flushed chain, a replaced table: ``nf_tables_trans_destroy_flush_work``), and
that work waits for an RCU grace period before it frees anything. So right
after a commit that freed something, in any namespace of the machine,
closing such a socket blocks the closing thread for a grace period: 8-16 ms
on the 2-core VM, longer than the 4-line partial sync of a 4,000-chain table
took (7-9 ms, measured with libnftables' ``nft_ctx_free`` beside its run).
The commit is in force once the kernel acknowledged it; the wait only
delays whoever closes.

libnftables closes its context's socket in ``nft_ctx_free``. Before that,
:func:`hold` takes a second reference to it (a duplicate descriptor, close-
on-exec), so the library's own close is not the last one, and this module's
thread closes the duplicate, waiting there instead of on the node's path
(:func:`let_go` inside the node's namespace, :func:`closing_after` around it:
the thread never lives in a lab's namespace).
The socket is found as the one netfilter netlink socket that appeared in
this process while the context was made (:func:`sockets` before and after):
if another thread opened one at the same moment there are two and nothing is
held, the library's close waits as before. A socket held a little longer
keeps its namespace a little longer, nothing else: it is not read from.

At the end of a process the kernel closes what is still queued (its exit
waits once for all of them, where closing each at once waited once each).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import queue
import socket
import stat
import threading
from typing import Iterator

NETLINK_NETFILTER = 12
SO_PROTOCOL = 38  # socket(7): the protocol a socket was made with

_queue: "queue.SimpleQueue[int | threading.Event]" = queue.SimpleQueue()
_thread: threading.Thread | None = None
_start_lock = threading.Lock()
_local = threading.local()  # .fds: what the thread let go of inside a namespace, not yet handed over


def sockets() -> set[tuple[int, int]]:
    """(descriptor, inode) of every socket this process holds open now (a few µs each)."""
    found = set()
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        try:
            st = os.fstat(fd)
        except OSError:
            continue  # closed meanwhile (or listdir's own descriptor)
        if stat.S_ISSOCK(st.st_mode):
            found.add((fd, st.st_ino))
    return found


def is_netfilter(fd: int) -> bool:
    """The descriptor is a netfilter netlink socket."""
    try:
        sock = socket.socket(fileno=fd)
    except OSError:
        return False
    try:
        return sock.family == socket.AF_NETLINK and sock.getsockopt(socket.SOL_SOCKET, SO_PROTOCOL) == NETLINK_NETFILTER
    except OSError:
        return False
    finally:
        sock.detach()  # the descriptor stays its owner's


def hold(before: set[tuple[int, int]], after: set[tuple[int, int]]) -> int | None:
    """A duplicate of the one netfilter socket in ``after`` and not in ``before`` (None: none, or more than
    one), for :func:`let_go` once its owner closed it."""
    new = [(fd, ino) for fd, ino in after - before if is_netfilter(fd)]
    if len(new) != 1:
        return None
    (fd, ino), = new
    try:
        dup = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 3)
    except OSError:
        return None
    if os.fstat(dup).st_ino != ino:  # the descriptor was closed and its number given to another file
        os.close(dup)
        return None
    return dup


def let_go(fd: int) -> None:
    """``fd`` is to be closed on this module's thread once the calling thread is out of the namespace it is
    in (:func:`closing_after`)."""
    _pending().append(fd)


@contextlib.contextmanager
def closing_after() -> Iterator[None]:
    """Around a call that enters a namespace and lets go of sockets there: once the calling thread is back,
    hand them to this module's thread.

    A thread starts in its creator's network namespace, and a thread that stays in a lab's namespace keeps
    that namespace alive and is one of the lab's processes to whoever looks (``down`` stops those). So the
    closing thread is started only by a thread in the namespace of the process's main thread (the host's,
    for the CLI and the library): elsewhere (a child working in a node) the sockets are closed at once."""
    try:
        yield
    finally:
        fds, _local.fds = _pending(), []
        if fds:
            _hand_over(fds)


def _pending() -> list[int]:
    if not hasattr(_local, "fds"):
        _local.fds = []
    return _local.fds


def _hand_over(fds: list[int]) -> None:
    global _thread
    with _start_lock:
        if _thread is None or not _thread.is_alive():
            if os.stat("/proc/thread-self/ns/net").st_ino != os.stat("/proc/self/ns/net").st_ino:
                for fd in fds:
                    os.close(fd)  # waits for the kernel here, as the library's own close did
                return
            _thread = threading.Thread(target=_close_forever, name="netlab-nfclose", daemon=True)
            _thread.start()
    for fd in fds:
        _queue.put(fd)


def wait_closed(timeout: float = 10.0) -> bool:
    """Wait until everything let go of so far is closed; False if that took longer than ``timeout``."""
    if _thread is None:
        return True
    done = threading.Event()
    _queue.put(done)
    return done.wait(timeout)


def _close_forever() -> None:
    while True:
        item = _queue.get()
        if isinstance(item, threading.Event):
            item.set()
            continue
        try:
            os.close(item)
        except OSError:
            pass  # already closed: nothing to let go of


def _after_fork_in_child() -> None:
    """A forked child has no closing thread: it starts its own when it lets go of something. What the parent
    had queued stays open in the child until the child ends."""
    global _queue, _thread, _start_lock, _local
    _queue, _thread, _start_lock, _local = queue.SimpleQueue(), None, threading.Lock(), threading.local()


os.register_at_fork(after_in_child=_after_fork_in_child)
