"""The capabilities netlab needs as root, read from this process's effective set (``CapEff`` in /proc/self/status).

Every command that touches the kernel needs :data:`NEEDED`: CAP_SYS_ADMIN (setns, mounts of namespaces) and
CAP_NET_ADMIN (links, addresses, routes, rules). A command that reads other processes' namespaces needs
:data:`PROCESSES` too: CAP_SYS_PTRACE, to read /proc/PID/ns/ of a process that is not dumpable, as dnsmasq is once
it drops its capabilities, or that has capabilities the reader lacks (an echo server or container started by root
with all of them). Without it root cannot tell whether kube-dns runs in its pod, and `status`, a repair `up` and
`down` took it for gone. `up` and `down` (whose sweep reads every process on the machine), `quiz` (its answer
repairs with `up`) and `break` of a scenario that stops a pod's containers (catalogue.Scenario.processes) refuse
up front without it; `status`, `get`, `logs` and `exec -c` read the lab's recorded containers only, and say
it (processes.CannotTell) where one cannot be read; `list`, `validate`, `plan`, `exec`, `inspect`, `impair`,
`probe`, `trace` and `capture` read none. ``probe``, ``trace`` and ``capture`` need :data:`PACKETS` (CAP_NET_RAW:
raw and packet sockets); ``up`` needs :data:`DNS` for a lab with kube-dns (dnsmasq binds port 53 and sets its
group: CAP_NET_BIND_SERVICE, CAP_SETGID).

Root without them (a container run without --privileged, Docker's default capabilities, ``setpriv
--bounding-set=-sys_ptrace``) passes the euid check and then fails, or worse misreads, halfway through a command:
the commands check them up front (cli/base.require_root), and the doctor says so first
(doctor_host.check_capabilities). CAP_KILL and CAP_DAC_OVERRIDE are not asked for: the files netlab makes are
root's, and so are the processes it starts (a pod's command that changes its user is the user's to allow for).
"""

from __future__ import annotations

import fcntl
import os

STATUS = "/proc/self/status"
NEEDED = {"CAP_NET_ADMIN": 12, "CAP_SYS_ADMIN": 21}  # linux/capability.h
PROCESSES = {"CAP_SYS_PTRACE": 19}
PACKETS = {"CAP_NET_RAW": 13}
DNS = {"CAP_NET_BIND_SERVICE": 10, "CAP_SETGID": 6}
BITS = {**NEEDED, **PROCESSES, **PACKETS, **DNS}
USE = {"CAP_NET_ADMIN": "make links, addresses and routes", "CAP_SYS_ADMIN": "enter or make a network namespace",
       "CAP_SYS_PTRACE": "tell which processes run in a lab (dnsmasq's namespaces, and those of a process with "
                         "capabilities root lacks, are unreadable without it)",
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


def refused(more: dict[str, int]) -> bool:
    """Root without :data:`NEEDED` and ``more``, or root of a user namespace that does not own the lab's
    (:func:`user_namespace`): what doctor_host.require_capabilities refuses, in the doctor's words."""
    return bool(missing({**NEEDED, **more})) or user_namespace() is not None


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
    """Why this process's root is not root enough, when it runs in a user namespace of its own (``unshare -Ur``, a
    rootless or userns-remapped container) that does not own the network, mount and UTS namespaces netlab makes
    the lab's from and comes back to, else None (or when it cannot be read).

    There CapEff is full, but only over that namespace: ``mount /run/netns`` and ``setns`` back into the host's
    are refused (`up` failed halfway, rolled back; `list` said "run it with sudo" to uid 0). Where the user
    namespace owns all three (an unprivileged LXC or Incus container, ``unshare -Urmnu``) a lab runs: up, status
    and down work there (tests/integration/test_userns_refused_live.py)."""
    try:
        mine = os.stat(SELF_USER_NS)
    except OSError:
        return None
    if mine.st_ino == INIT_USER_NS:
        return None
    hosts = [kind for kind in ACTS_IN if not _owned_by(kind, (mine.st_dev, mine.st_ino))]
    if not hosts:
        return None
    try:
        with open(UID_MAP, encoding="ascii", errors="replace") as f:
            mapped = "; ".join(" ".join(line.split()) for line in f if line.strip())
    except OSError:
        mapped = "unreadable"
    return (f"root of a user namespace, not the host's (uid_map {mapped}: unshare -U, a rootless or userns-remapped "
            f"container), in {', '.join(hosts)} namespaces it does not own: netlab cannot mount /run/netns or "
            "enter the network namespaces `ip netns` names")


ACTS_IN = ("net", "mnt", "uts")  # the namespaces netlab makes a lab's from and sets back (kernel/netns, workload/uts)
NS_GET_USERNS = 0xB701  # _IO(0xb7, 0x1), linux/nsfs.h: an fd of the user namespace that owns a namespace


def _owned_by(kind: str, user_ns: tuple[int, int]) -> bool:
    """This process's ``kind`` namespace is owned by ``user_ns`` (st_dev, st_ino). False where the owner is an
    ancestor of the caller's user namespace (NS_GET_USERNS then fails with EPERM: the host's) or cannot be read."""
    try:
        fd = os.open(f"/proc/self/ns/{kind}", os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        owner = fcntl.ioctl(fd, NS_GET_USERNS)
    except OSError:
        return False
    finally:
        os.close(fd)
    try:
        st = os.fstat(owner)
    finally:
        os.close(owner)
    return (st.st_dev, st.st_ino) == user_ns


USERNS_FIX = ("run netlab as the host's root: on the host, or in a container run with --privileged and without a "
              "user namespace of its own (not rootless, no userns-remap), or one whose user namespace owns its "
              "network, mount and UTS namespaces (an unprivileged LXC container, unshare -Urmnu)")


def denied(exc: PermissionError) -> str:
    """EPERM/EACCES in words, the CLI's line (cli/boundary.py) and the API's EnvironmentNotReady alike: "run it with
    sudo" only to a user who is not root; to root without a capability netlab uses (an unprivileged container),
    the capabilities it lacks, as the doctor says it."""
    what = exc.filename or exc
    if os.geteuid() == 0:
        foreign = user_namespace()
        if foreign:
            return f"permission denied: {what}: {foreign}; {USERNS_FIX}"
        names = missing(BITS)
        if names:
            return f"permission denied: {what}: {detail(names)}; {fix(names)}"
    return f"permission denied: {what}; run it with sudo"
