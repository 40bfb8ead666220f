"""Exit statuses of processes we cannot wait for, from the kernel's taskstats.

A process's exit status goes to its parent. A command container started by
a plain ``netlab up`` has init for a parent once ``up`` has exited, so a
watcher started later (``up --watch``) sees the container end (its pidfd)
but not how: exit 0 or a failure, which is all restartPolicy OnFailure asks.

The kernel tells it another way. Its taskstats interface (the generic
netlink family ``TASKSTATS``, CONFIG_TASKSTATS) sends a record of every task
that exits on the CPUs a listener registered
(TASKSTATS_CMD_ATTR_REGISTER_CPUMASK), from the exiting task itself, before
its parent is told: the task's pid and its ``ac_exitcode``, which is the
status ``wait(2)`` would give (``exit(3)``: 0x300; killed by SIGKILL: 9).
So by the time the container's pidfd is readable, its record is queued on
our socket. Records of every other exit on the machine come too: they are
read and dropped (``read`` keeps only the pids asked for), often enough that
the socket's buffer (netlink.Conn's 8 MB, ~10,000 records) does not overflow; one that does loses records, and an
exit then stays unknown, as it was without this.

Where the family is missing (a kernel without taskstats) or refuses us (not
in the machine's first network and user namespaces), :func:`listen` gives
None and nothing changes.
"""

from __future__ import annotations

import errno
import os
import socket
import struct
from typing import Iterable

from netlab.kernel import netlink

NETLINK_GENERIC = 16
GENL_ID_CTRL = 0x10
CTRL_CMD_GETFAMILY = 3
CTRL_ATTR_FAMILY_ID, CTRL_ATTR_FAMILY_NAME = 1, 2
GENL_HDR = struct.Struct("=BBH")  # cmd, version, reserved
FAMILY = "TASKSTATS"
TASKSTATS_CMD_GET, TASKSTATS_CMD_NEW = 1, 2
TASKSTATS_CMD_ATTR_REGISTER_CPUMASK, TASKSTATS_CMD_ATTR_DEREGISTER_CPUMASK = 3, 4
TASKSTATS_TYPE_PID, TASKSTATS_TYPE_STATS, TASKSTATS_TYPE_AGGR_PID = 1, 3, 4
EXITCODE = struct.Struct("=I")  # struct taskstats: u16 version, then (aligned) u32 ac_exitcode at offset 4
EXITCODE_AT = 4


def exit_status(ac_exitcode: int) -> int:
    """A wait(2) status as a container's exit code: its code, or 128 + the signal that killed it."""
    signal = ac_exitcode & 0x7F
    return 128 + signal if signal else (ac_exitcode >> 8) & 0xFF


def exits_in(data: bytes, family: int) -> Iterable[tuple[int, int]]:
    """(pid, exit code) of each exit record in one datagram from the family."""
    for m in netlink.split(data):
        if m.mtype != family or len(m.body) < GENL_HDR.size or m.body[0] != TASKSTATS_CMD_NEW:
            continue
        aggr = netlink.attrs(m.body, GENL_HDR.size).get(TASKSTATS_TYPE_AGGR_PID)
        if aggr is None:
            continue  # a thread group's total (AGGR_TGID): the leader's own record says it
        inner = netlink.attrs(aggr)
        pid = netlink.get_u32(inner, TASKSTATS_TYPE_PID)
        stats = inner.get(TASKSTATS_TYPE_STATS, b"")
        if pid is not None and len(stats) >= EXITCODE_AT + EXITCODE.size:
            yield pid, exit_status(EXITCODE.unpack_from(stats, EXITCODE_AT)[0])


class ExitListener:
    """Registered for the exits on every CPU of the machine until :meth:`close`."""

    def __init__(self, conn: netlink.Conn, family: int, cpus: str):
        self.conn, self.family, self.cpus = conn, family, cpus

    def fileno(self) -> int:
        return self.conn.sock.fileno()

    def read(self, wanted: Iterable[int]) -> dict[int, int]:
        """The exit codes of the ``wanted`` pids among the records queued now (the others are dropped)."""
        want = set(wanted)
        out: dict[int, int] = {}
        while True:
            try:
                data = self.conn.sock.recv(1 << 16, socket.MSG_DONTWAIT)
            except BlockingIOError:
                return out
            except OSError as exc:
                if exc.errno == errno.ENOBUFS:  # records were lost; later ones still come
                    continue
                raise
            for pid, code in exits_in(data, self.family):
                if pid in want:
                    out[pid] = code

    def close(self) -> None:
        try:
            self.conn.request("taskstats: deregister", _cpumask(self.family, TASKSTATS_CMD_ATTR_DEREGISTER_CPUMASK,
                                                                 self.cpus))
        except OSError:
            pass  # the kernel forgets a listener whose socket is closed anyway
        self.conn.close()


def available() -> tuple[bool, str]:
    """Whether the kernel has the TASKSTATS family here, and why not (only asks: registers nothing)."""
    try:
        with netlink.Conn(NETLINK_GENERIC) as conn:
            family = _family_id(conn)
    except OSError as exc:
        return False, f"generic netlink did not answer ({os.strerror(exc.errno) if exc.errno else exc})"
    if family is None:
        return False, "the kernel has no TASKSTATS family (CONFIG_TASKSTATS)"
    return True, f"generic netlink family TASKSTATS ({family})"


def listen() -> ExitListener | None:
    """A listener for every exit on the machine; None where taskstats is missing or refuses us."""
    try:
        conn = netlink.Conn(NETLINK_GENERIC)
    except OSError:
        return None
    try:
        family = _family_id(conn)
        if family is None:
            conn.close()
            return None
        cpus = _online_cpus()
        conn.request("taskstats: register", _cpumask(family, TASKSTATS_CMD_ATTR_REGISTER_CPUMASK, cpus))
    except OSError:
        conn.close()
        return None
    return ExitListener(conn, family, cpus)


def _cpumask(family: int, kind: int, cpus: str) -> bytes:
    body = GENL_HDR.pack(TASKSTATS_CMD_GET, 1, 0) + netlink.attr(kind, cpus.encode() + b"\0")
    return netlink.message(family, 0, body)


def _online_cpus() -> str:
    """The CPUs a task may exit on, as the kernel writes a list ("0-1")."""
    try:
        with open("/sys/devices/system/cpu/online") as fh:
            return fh.read().strip()
    except OSError:
        return f"0-{max(0, (os.cpu_count() or 1) - 1)}"


def _family_id(conn: netlink.Conn) -> int | None:
    """The TASKSTATS family's number, asked of the generic netlink controller; None if it has none."""
    body = GENL_HDR.pack(CTRL_CMD_GETFAMILY, 1, 0) + netlink.string(CTRL_ATTR_FAMILY_NAME, FAMILY)
    try:
        reply = conn.get("taskstats: find the family", netlink.message(GENL_ID_CTRL, 0, body))
    except netlink.NetlinkError as exc:
        if exc.errno == errno.ENOENT:
            return None
        raise
    return netlink.get_u16(netlink.attrs(reply.body, GENL_HDR.size), CTRL_ATTR_FAMILY_ID)
