"""Waiting, bounded, for links to run: the flag IFF_RUNNING (operstate UP, or UNKNOWN for a device that reports
none), which the kernel's link watch sets a moment after a link's carrier comes. lab/carrier.py waits so after a
repair, cni/announce.py before a pod's gratuitous ARP; each with its own bound."""

from __future__ import annotations

import time
from typing import Iterable

from netlab.kernel.base import Kernel, KernelError

POLL = 0.01  # seconds between two reads of a namespace's running links


def wait_running(kernel: Kernel, links: Iterable[tuple[str, str]], timeout: float) -> list[tuple[str, str]]:
    """Wait until every (namespace, link) is operationally up; returns those that are not after ``timeout`` seconds.

    A namespace that cannot be read (deleted meanwhile) is not waited for: the next check sees it."""
    todo = list(dict.fromkeys(links))
    deadline = time.monotonic() + timeout
    while todo:
        left = []
        for ns in dict.fromkeys(ns for ns, _ in todo):
            try:
                running = kernel.running_links(ns)
            except (KernelError, OSError):
                continue
            left += [(n, name) for n, name in todo if n == ns and name not in running]
        todo = left
        if not todo or time.monotonic() >= deadline:
            break
        time.sleep(POLL)
    return todo
