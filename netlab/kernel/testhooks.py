"""Test hooks: the one place where netlab reads test-only settings from the environment.

They let a root integration test reproduce, on this machine, conditions that
only other machines have, or stop ``up`` at an exact point. Each is read once,
when this module is imported, never inside a loop; all are off unless set.

``NETLAB_FAULT_AT=k`` and ``NETLAB_FAULT_MODE=fail|kill``
    the k-th changing operation of ``up`` fails (``ApplyFailed``) or kills the
    process with SIGKILL (see netlab.lab.journal);
``NETLAB_FAULT_SIGNAL=k`` (or ``k:INT``)
    at the k-th changing operation, ``up`` sends itself SIGTERM (SIGINT): the
    signal path, deterministic instead of a race with a fast machine;
``NETLAB_FAULT_POINT=NAME`` (with ``NETLAB_FAULT_MODE``)
    a named point inside a feature (``resolv-written``: right after the first
    pod's resolv.conf is written, before the state records it as made;
    ``impair-set``: right after a run's first qdisc change;
    ``state-write``: a state write about to begin; ``state-temp-written``:
    its temporary file whole, not yet
    renamed into place; ``state-renamed``: the state in place, its sum not
    yet written: the first of a run's writes; ``containers-started``: a run's
    command containers started, their pids not yet recorded; ``cni-detached``:
    a CNI re-attach's DEL done, its ADD not begun; ``cni-adding``: the
    records of the pods a run ADDs written (phase adding), no plugin run
    yet; ``down-deleted``: a
    ``down``'s namespaces deleted, its state (phase deleting) not yet
    forgotten, the lab's lock held; ``down-stopped``: a ``down``'s
    containers stopped and their UTS namespaces unpinned, its network
    namespaces not yet deleted; ``netns-checked``: an ``up`` found the
    names of the namespaces it makes free, none made yet; ``repair-read``: an
    ``up`` read the namespaces that were there and worked out their repair,
    none of it applied yet; ``processes-found``: each round of a stop of what
    runs in namespaces that go (kernel/kill.py), its scan of /proc made, what
    it found not yet signalled; ``forget-emptied``:
    a lab's folder that ``down`` removes (realize/lab_removal.remove_own) holds
    its state, lock and mark alone; ``forget-state-gone``,
    ``forget-lock-gone``, ``forget-mark-gone``: the folder's state, then its
    lock, then its mark removed (the folder off the lab's path already:
    realize/lab_removal.take_away); ``drop-lock-gone``, ``drop-mark-gone``: the
    same of a folder that held its lock and mark alone, dropped by the
    lock's holder (realize/lab_lock.py: a command that found the lab not up);
    ``watch-subscribed``: a notification listener's (kernel/events.Listener, ``up
    --watch``'s) sockets subscribed in every namespace, none of their links dumped yet)
    fails or kills the process there, or
    (``NETLAB_FAULT_MODE=pause``) says ``netlab: paused at NAME`` on stderr
    and waits for a line on stdin: a root test runs another command then;
``NETLAB_TEST_FALLBACK_LINKS=1``
    every namespace netlab creates starts with two extra links (bridges named
    ``sit0`` and ``tunl0``, at ifindex 2 and 3), the way a host with the
    sit/ipip modules loaded gives every new namespace its fallback tunnels
    (this machine cannot load those modules);
``NETLAB_TEST_HOST_DEVCONF=1``
    every namespace netlab creates (and the one it looks at a host's settings
    in) starts with the IPv4 ``all`` and ``default`` settings of a host tuned
    for IPVS or LVS (``arp_ignore=1``, ``arp_announce=2``, with ``arp_filter``
    and ``rp_filter`` on) that is also a Kubernetes node (kube-proxy's
    ``route_localnet=1``) with ``proxy_arp`` on and ICMP redirects off
    (``send_redirects=0``), as Linux copies a host's into each new namespace
    (this machine's are the kernel's defaults, and netlab never changes the
    host's);
``NETLAB_TEST_HOST_FORWARD=1``
    every namespace netlab creates (and the one it looks at a host's settings
    in) starts as on a host that forwards (Docker's, a CI VM's): ip_forward=1
    is written first, so the kernel itself sets all and default forwarding 1
    and all.accept_redirects 0 (devinet.c, inet_forward_change), the values
    Linux copies from such a host into each new namespace;
``NETLAB_TEST_NO_IPV6=1``
    netlab's sysctl reads and writes find no ``net/ipv6`` folder under
    ``/proc/sys``, as on a kernel booted with ``ipv6.disable=1`` (kernel/procsys.py,
    IPV6_DIR); the namespaces themselves still have IPv6 (on, since nothing
    turns it off), which no IPv4 dump or probe of the lab sees;
``NETLAB_TEST_READ_SHARE=k``
    a process that reads many namespaces (``status``) starts a forked reader
    per core once there are k namespaces a reader (64 otherwise): a small
    lab's status then goes through the forked readers too (kernel/readmany.py);
``NETLAB_TEST_XTABLES_WAIT=seconds``
    how long the legacy backend's ``iptables-restore -w`` waits for the xtables
    lock (5 s otherwise, as kube-proxy's): a root test that holds the lock while
    a restore waits lets it go when its own check is done, which a loaded
    machine can delay past 5 s (the restore then fails, and its apply with it).
"""

from __future__ import annotations

import os
import signal

_env = os.environ


def _int(name: str) -> int | None:
    value = _env.get(name, "")
    return int(value) if value.isdigit() else None


FAULT_AT = _int("NETLAB_FAULT_AT")
FAULT_MODE = _env.get("NETLAB_FAULT_MODE", "fail")
_signal = _env.get("NETLAB_FAULT_SIGNAL", "").partition(":")
FAULT_SIGNAL = int(_signal[0]) if _signal[0].isdigit() else None
FAULT_SIGNUM = getattr(signal, f"SIG{_signal[2] or 'TERM'}", signal.SIGTERM)
FAULT_POINT = _env.get("NETLAB_FAULT_POINT", "")
FALLBACK_LINKS = _env.get("NETLAB_TEST_FALLBACK_LINKS") == "1"
FALLBACK_NAMES = ("sit0", "tunl0")
READ_SHARE = _int("NETLAB_TEST_READ_SHARE") or None
NO_IPV6 = _env.get("NETLAB_TEST_NO_IPV6") == "1"
XTABLES_WAIT = str(_int("NETLAB_TEST_XTABLES_WAIT") or "")
TUNED = (("arp_ignore", "1"), ("arp_announce", "2"), ("arp_filter", "1"), ("rp_filter", "1"),
         ("route_localnet", "1"), ("proxy_arp", "1"), ("send_redirects", "0"))
# The sysctls a namespace being created copies from a tuned host (when asked to), written before its own.
INHERITED_DEVCONF = ((("net.ipv4.ip_forward", "1"),) if _env.get("NETLAB_TEST_HOST_FORWARD") == "1" else ()) + (
    tuple((f"net.ipv4.conf.{which}.{key}", value) for which in ("all", "default") for key, value in TUNED)
    if _env.get("NETLAB_TEST_HOST_DEVCONF") == "1" else ())


def add_fallback_links(conn) -> None:
    """In a namespace being created: make the stand-ins for fallback tunnels (when asked to)."""
    if not FALLBACK_LINKS:
        return
    from netlab.kernel import rtnl

    for index, name in enumerate(FALLBACK_NAMES, start=2):
        conn.request(f"test hook: fallback link {name}", rtnl.bridge_add(index, name, None, None, up=False))


_QUIET: list[bool] = []  # inside quiet(): the points a rollback's put back passes again do nothing


class quiet:
    """While it lasts, :func:`fault_point` does nothing: a rollback that puts the features' work back (its start
    again, lab/rollback.py) passes the points its run failed or paused at, which are the run's, not its own."""

    def __enter__(self) -> None:
        _QUIET.append(True)

    def __exit__(self, *exc: object) -> None:
        _QUIET.pop()


def fault_point(name: str) -> None:
    """Fail or die here when ``NETLAB_FAULT_POINT`` names this point (not inside :class:`quiet`)."""
    if FAULT_POINT != name or _QUIET:
        return
    if FAULT_MODE == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    if FAULT_MODE == "pause":  # held here until the test writes a line (or closes stdin)
        os.write(2, f"netlab: paused at {name} (test hook)\n".encode())
        os.read(0, 1)
        return
    from netlab.errors import ApplyFailed

    raise ApplyFailed(f"injected fault at {name}")
