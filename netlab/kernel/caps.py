"""The capabilities netlab needs as root: CAP_SYS_ADMIN (setns, mounts of namespaces) and CAP_NET_ADMIN (links,
addresses, routes, rules), read from this process's effective set (``CapEff`` in /proc/self/status).

Root without them (a container run without --privileged, ``setpriv --bounding-set=-sys_admin,-net_admin``)
passes the euid check and then fails at its first setns or mount, halfway through a command: the commands
check them up front (cli/base.require_root), and the doctor says so first (doctor_host.check_capabilities).
"""

from __future__ import annotations

STATUS = "/proc/self/status"
NEEDED = {"CAP_NET_ADMIN": 12, "CAP_SYS_ADMIN": 21}  # linux/capability.h


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


def missing() -> list[str]:
    """The capabilities netlab needs that this process lacks, by name (sorted); [] when it has them all or when
    its set cannot be read (the kernel then says what it refuses, as before)."""
    mask = effective()
    if mask is None:
        return []
    return sorted(name for name, bit in NEEDED.items() if not mask >> bit & 1)


def detail(names: list[str]) -> str:
    """What root without ``names`` cannot do: the doctor's words (doctor_host.check_capabilities)."""
    mask = effective()
    eff = f"CapEff {mask:016x}; " if mask is not None else ""
    return (f"root without {' and '.join(names)} ({eff}an unprivileged container, or a bounding set that drops "
            "them): netlab cannot enter or make a network namespace")


FIX = ("run netlab where root has them: on the host, or in a container run with --privileged "
       "(or --cap-add SYS_ADMIN --cap-add NET_ADMIN)")
