"""How many connections' sockets a worker may hold open at once: what its open-files limit leaves (QA q50 3).

A TCP probe and a Service UDP probe each hold a socket of their own while in flight (transports.py); a Service's
distribution check sends ``max(200, 40 n)`` connections at once (job.py). Under ``ulimit -n 100`` (a limit the
doctor accepted for a lab of 7 namespaces) the agent's 200th socket failed with EMFILE and the run with it. So the
worker reads its limit (getrlimit, the soft one the agent raised to the hard one) and what it holds already
(/proc/self/fd), keeps what the namespaces it has still to open need (NS_FILES each: a raw ICMP socket, a UDP
socket, a netlink socket, the namespace's descriptor: sockets.NsSockets) and a margin for the short-lived ones
(a neighbour read, the kernel's own), and sends its connections in turns that fit the rest.
"""

from __future__ import annotations

import os
import resource

NS_FILES = 4  # descriptors a worker holds per source namespace (sockets.NsSockets, probing)
MARGIN = 8  # descriptors kept free for short-lived opens (an address lookup's socket, a /proc read)


def open_now() -> int:
    """Descriptors this process holds (the listing's own is not counted)."""
    try:
        return len(os.listdir("/proc/self/fd")) - 1
    except OSError:
        return 0


def socket_room(namespaces: int, held: int | None = None, limit: int | None = None) -> int:
    """Sockets of connections this process may hold at once beyond what it ``held`` (now: /proc/self/fd), once it
    has opened ``namespaces`` more namespaces' sockets, under ``limit`` (now: its soft RLIMIT_NOFILE); at least 1
    (one that does not fit fails with EMFILE, said as the limit: runner.py)."""
    if limit is None:
        limit = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        if limit == resource.RLIM_INFINITY:
            return 1 << 30
    held = open_now() if held is None else held
    return max(1, limit - held - NS_FILES * namespaces - MARGIN)
