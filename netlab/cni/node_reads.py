"""What status reads of the kernel to compare pods with their chains' cached ADD results, each node read once.

A pod of a chain without CHECK is compared with its cached result (cni/verify.py), and so is its node's side
(cni/verify_node.py): the node's devices (a netlink dump of the node's namespace) and, for a pod given hostPorts,
portmap's DNATs (``iptables-save -t nat`` of the node). Read for each pod, a node of 12 such pods was dumped and
its nat table saved 12 times in one status, and a kernel (netlink sockets) opened for each pod. Here each node's
namespace is dumped once and its nat table saved once, whichever of its pods asks first (the comparisons run on
several threads: the others wait for that read, then share it, its failure too), and the pods' own namespaces are
read through one kernel per thread (a kernel is not thread-safe), each pod's socket closed once it is read.

One :class:`NodeReads` is for one status: what it read is not read again, so a caller that compares after a
change (up's CHECK of a fresh ADD) makes its own.
"""

from __future__ import annotations

import threading
from typing import Any, Callable

from netlab.kernel.base import Kernel, Snapshot


def _live() -> Kernel:
    from netlab.kernel.live import LiveKernel

    return LiveKernel()


class _Once:
    """One read, made by the first thread that asks; the others wait for it and get what it got."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.done = False
        self.value: Any = None
        self.error: Exception | None = None


class NodeReads:
    """Each node's namespace and nat table read once, for all its pods; each pod's namespace through this thread's
    kernel. ``open_kernel``: how a kernel is made (the live one; a test's counts its reads)."""

    def __init__(self, open_kernel: Callable[[], Kernel] | None = None) -> None:
        self._open = open_kernel or _live
        self._lock = threading.Lock()
        self._once: dict[tuple[str, str], _Once] = {}
        self._local = threading.local()
        self._kernels: list[Kernel] = []

    def kernel(self) -> Kernel:
        """This thread's kernel, made at its first read."""
        k = getattr(self._local, "kernel", None)
        if k is None:
            k = self._local.kernel = self._open()
            with self._lock:
                self._kernels.append(k)
        return k

    def pod(self, netns: str) -> Snapshot:
        """A pod's namespace (links, addresses, routes), read now; NetnsGone when it is gone."""
        k = self.kernel()
        try:
            return k.snapshot(netns, (), tables=False)
        finally:
            forget = getattr(k, "forget", None)  # its socket is no other pod's
            if forget is not None:
                forget(netns)

    def node(self, netns: str) -> Snapshot:
        """A node's namespace, read once (NetnsGone, each time it is asked, when it was gone)."""
        return self._read(("links", netns), lambda: self.kernel().snapshot(netns, (), tables=False))

    def nat(self, netns: str) -> str:
        """A node's nat table as ``iptables-save -t nat`` prints it, read once (KernelError when it could not be)."""
        return self._read(("nat", netns), lambda: self.kernel().iptables_save(netns, "nat"))

    def _read(self, key: tuple[str, str], read: Callable[[], Any]) -> Any:
        with self._lock:
            once = self._once.setdefault(key, _Once())
        with once.lock:
            if not once.done:
                try:
                    once.value = read()
                except Exception as exc:  # said to every pod that asks, as to the first
                    once.error = exc
                once.done = True
        if once.error is not None:
            raise once.error
        return once.value

    def close(self) -> None:
        with self._lock:
            kernels, self._kernels = self._kernels, []
        for k in kernels:
            k.close()

    def __enter__(self) -> "NodeReads":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
