"""Starting a program in a node's network namespace as ``ip netns exec`` starts it: its own /sys.

A CNI plugin runs in the node's namespace (the runtime's "host"). Entering that network namespace alone leaves the
program the machine's mount namespace, whose /sys is the sysfs the machine mounted in its own network namespace: a
plugin reading /sys/class/net/eth0/address got the machine's eth0, and one writing /sys/class/net/<dev>/... would
have changed the machine's device. ``ip netns exec`` (iproute2's lib/namespace.c, netns_switch) gives its command a
mount namespace of its own after the setns: ``/`` made rslave (nothing it mounts propagates back), /sys detached
and a sysfs mounted fresh, which shows the devices of the network namespace of the task that mounts it. The same
here (not its /etc/netns bind mounts: a node has none).

A thread cannot give itself a mount namespace and take back the process's (its cwd and root would be its own from
then on), so each start runs in a short-lived thread of its own that enters the node, unshares, mounts, starts the
program (which inherits the thread's namespaces: vfork, no code between fork and exec) and ends; the mount
namespace lives as long as the program. Measured on a 2-core VM (load ~10, 68 mounts): about 0.5 ms more per call
(median; the thread is most of it), against the 20-50 ms a call of Debian's plugins takes there.
"""

from __future__ import annotations

import subprocess
import threading
from typing import Any

from netlab.kernel import netns as nsmod


class NodeSysfsError(OSError):
    """The program's mount namespace or /sys could not be made: it is not started (it would see the machine's)."""


def own_sysfs(netns: str) -> None:
    """In a thread of its own, already in network namespace ``netns``: a private mount namespace whose /sys is a
    sysfs of ``netns`` (netns_switch's steps). NodeSysfsError when a step fails: a program started after a failed
    step would see, or write, the machine's /sys."""
    try:
        nsmod.unshare(nsmod.CLONE_NEWNS)
        nsmod.mount("none", "/", None, nsmod.MS_SLAVE | nsmod.MS_REC)  # mount --make-rslave /
    except OSError as exc:
        raise NodeSysfsError(exc.errno, f"cannot give it a mount namespace of its own: {exc.strerror}") from None
    try:
        nsmod.detach("/sys")
    except OSError:
        pass  # no sysfs there (netns_switch goes on likewise); the fresh one covers whatever is
    try:
        nsmod.mount(netns, "/sys", "sysfs")
    except OSError as exc:
        raise NodeSysfsError(exc.errno, f"cannot mount the node's /sys: {exc.strerror}") from None


def popen_in_node(netns: str, argv: list[str], **kwargs: Any) -> subprocess.Popen[bytes]:
    """``subprocess.Popen(argv, **kwargs)`` born in network namespace ``netns`` with its own mount namespace and a
    /sys of ``netns`` (:func:`own_sysfs`); what Popen or the namespace steps raise is raised here (NetnsGone,
    NodeSysfsError, an exec's OSError)."""
    box: dict[str, Any] = {}

    def start() -> None:
        try:
            with nsmod.entered(netns):
                own_sysfs(netns)
                box["proc"] = subprocess.Popen(argv, **kwargs)
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
            box["exc"] = exc

    thread = threading.Thread(target=start, name="netlab-node-exec", daemon=True)
    thread.start()
    try:
        thread.join()
    finally:
        while thread.is_alive():  # a stop signal in the caller's join: the start is a moment; let it end first
            thread.join(0.05)
    if "exc" in box:
        raise box["exc"]
    proc: subprocess.Popen[bytes] = box["proc"]
    return proc
