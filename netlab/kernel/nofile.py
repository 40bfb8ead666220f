"""This process's open-files limit (RLIMIT_NOFILE): raised for netlab's own work, given back to what it execs.

netlab holds a netlink socket per namespace it talks to, and more while it makes a lab (pipes to its
children, the sysctl directories it walks), so the usual soft limit (1,024) is too small for a big lab. As Go
programs do since Go 1.19 (and systemd's tools), the program raises its soft limit to the hard one at its
start (launch.py), and the live kernel as far as it needs (kernel/live.py); only this process's own limit,
nothing of the host's. A program netlab execs for the user (a container's command, `netlab exec`'s) gets the
soft limit the user gave netlab back (:func:`as_given`, just before its exec), as Go gives it to the programs
it starts: a program written for 1,024 descriptors (select(2)) does not meet more.

A hard limit that is too small is not raised: each open that fails says so (errors.open_files_line).
"""

from __future__ import annotations

import resource

UNLIMITED_HARD = 1 << 20  # the soft limit raised to under an unlimited hard one (the kernel's nr_open)
_given: tuple[int, int] | None = None  # (soft, hard) as the process began, before netlab raised it


def given() -> tuple[int, int]:
    """(soft, hard) as netlab was given them (now, if it has raised nothing)."""
    return _given or resource.getrlimit(resource.RLIMIT_NOFILE)


def raise_soft(want: int | None = None) -> None:
    """Raise the soft limit towards the hard one (as far as ``want``); never lowers it. Nothing else changes."""
    global _given
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else UNLIMITED_HARD
    if want is not None:
        target = min(target, want)
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError):
            return  # as it was: what then fails says the limit
        if _given is None:
            _given = (soft, hard)


def as_given() -> None:
    """In a child just before it execs a program for the user: the soft limit netlab was given, back."""
    if _given is None:
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != _given[0]:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (_given[0], hard))
        except (ValueError, OSError):
            pass
