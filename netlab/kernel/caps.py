"""The capabilities netlab needs as root, read from this process's effective set (``CapEff`` in /proc/self/status).

Every command that touches the kernel needs :data:`NEEDED`: CAP_SYS_ADMIN (setns, mounts of namespaces),
CAP_NET_ADMIN (links, addresses, routes, rules) and CAP_SYS_PTRACE (reading /proc/PID/ns/ of a process that is not
dumpable, as dnsmasq is once it drops its capabilities: without it root cannot tell whether kube-dns runs in its
pod, and `status`, a repair `up` and `down` took it for gone). ``probe``, ``trace`` and ``capture`` need
:data:`PACKETS` too (CAP_NET_RAW: raw and packet sockets); ``up`` needs :data:`DNS` for a lab with kube-dns
(dnsmasq binds port 53 and sets its group: CAP_NET_BIND_SERVICE, CAP_SETGID).

Root without them (a container run without --privileged, Docker's default capabilities, ``setpriv
--bounding-set=-sys_ptrace``) passes the euid check and then fails, or worse misreads, halfway through a command:
the commands check them up front (cli/base.require_root), and the doctor says so first
(doctor_host.check_capabilities). CAP_KILL and CAP_DAC_OVERRIDE are not asked for: the files netlab makes are
root's, and so are the processes it starts (a pod's command that changes its user is the user's to allow for).
"""

from __future__ import annotations

import os

STATUS = "/proc/self/status"
NEEDED = {"CAP_NET_ADMIN": 12, "CAP_SYS_ADMIN": 21, "CAP_SYS_PTRACE": 19}  # linux/capability.h
PACKETS = {"CAP_NET_RAW": 13}
DNS = {"CAP_NET_BIND_SERVICE": 10, "CAP_SETGID": 6}
BITS = {**NEEDED, **PACKETS, **DNS}
USE = {"CAP_NET_ADMIN": "make links, addresses and routes", "CAP_SYS_ADMIN": "enter or make a network namespace",
       "CAP_SYS_PTRACE": "tell which processes run in a lab (dnsmasq's namespaces are unreadable without it)",
       "CAP_NET_RAW": "probe, trace and capture send and capture packets",
       "CAP_NET_BIND_SERVICE": "kube-dns's dnsmasq binds port 53",
       "CAP_SETGID": "kube-dns's dnsmasq sets its group"}


def effective() -> int | None:
    """This process's effective capability set, as a bit mask; None when it cannot be read."""
    try:
        with open(STATUS, encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("CapEff:"):
                    return int(line.split(":", 1)[1].strip(), 16)
    except (OSError, ValueError):
        return None
    return None


def missing(names: dict[str, int] | None = None) -> list[str]:
    """Which of ``names`` (default: :data:`NEEDED`, every command's) this process lacks, by name (sorted); [] when it
    has them all or when its set cannot be read (the kernel then says what it refuses, as before)."""
    mask = effective()
    if mask is None:
        return []
    return sorted(name for name, bit in (NEEDED if names is None else names).items() if not mask >> bit & 1)


def detail(names: list[str]) -> str:
    """What root without ``names`` cannot do: the doctor's words (doctor_host.check_capabilities)."""
    mask = effective()
    eff = f"CapEff {mask:016x}; " if mask is not None else ""
    uses = "; ".join(f"{name[4:]}: {USE[name]}" for name in BITS if name in names)
    return f"root without {' and '.join(names)} ({eff}an unprivileged container, or a bounding set that drops them): " \
        f"netlab needs {'it' if len(names) == 1 else 'them'} ({uses})"


def fix(names: list[str]) -> str:
    """The doctor's fix for ``names`` missing: where root has them, naming each as Docker adds it."""
    adds = " ".join(f"--cap-add {name[4:]}" for name in BITS if name in names)
    return f"run netlab where root has them: on the host, or in a container run with --privileged (or {adds})"


# The initial user namespace's inode (PROC_USER_INIT_INO, include/linux/proc_ns.h: fixed since Linux 3.8).
INIT_USER_NS = 0xEFFFFFFD
SELF_USER_NS = "/proc/self/ns/user"
UID_MAP = "/proc/self/uid_map"


def user_namespace() -> str | None:
    """Why this process's root is not the host's, when it runs in a user namespace of its own (``unshare -Ur``, a
    rootless or userns-remapped container), else None (or when it cannot be read).

    There CapEff is full, but only over that namespace: ``mount /run/netns`` and ``setns`` into the namespaces
    ``ip netns`` names are refused (`up` failed halfway, rolled back; `list` said "run it with sudo" to uid 0). With
    a mount and network namespace of its own too (``unshare -Urmn``) it fails the same way: nothing works there."""
    try:
        if os.stat(SELF_USER_NS).st_ino == INIT_USER_NS:
            return None
    except OSError:
        return None
    try:
        with open(UID_MAP, encoding="ascii", errors="replace") as f:
            mapped = "; ".join(" ".join(line.split()) for line in f if line.strip())
    except OSError:
        mapped = "unreadable"
    return (f"root of a user namespace, not the host's (uid_map {mapped}: unshare -U, a rootless or userns-remapped "
            "container): netlab cannot mount /run/netns or enter the network namespaces `ip netns` names")


USERNS_FIX = ("run netlab as the host's root: on the host, or in a container run with --privileged and without a "
              "user namespace of its own (not rootless, no userns-remap)")
