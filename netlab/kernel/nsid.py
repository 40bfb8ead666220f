"""The id a namespace gives another (``ip netns list-id``): RTM_GETNSID asked with the other's file.

A link whose other end is in another namespace (a veth) says which in IFLA_LINK_NETNSID
(rtnl_parse.LinkMsg.peer_netnsid): a number its own namespace gave the peer's. These ids, like ifindexes, are
per namespace: a veth's peer is known to be in namespace P only when the veth's namespace, asked with P's file
(NETNSA_FD), answers that same id. The kernel gives an id when a veth's ends are put in two namespaces, so a
namespace that has no veth to P may have none for it (left out here).
"""

from __future__ import annotations

import os
import struct
from typing import Iterable

from netlab.kernel.netlink import Conn, NetlinkError, NetlinkTimeout, attrs, get_u32, message, u32
from netlab.kernel.netns import netns_path

RTM_GETNSID = 90  # answered by one RTM_NEWNSID (linux/rtnetlink.h)
NETNSA_NSID, NETNSA_FD = 1, 3  # linux/net_namespace.h
RTGENMSG = struct.Struct("=Bxxx")  # struct rtgenmsg, aligned


def nsid_get(fd: int) -> bytes:
    """``ip netns list-id`` of one namespace: the id the socket's namespace gives the one ``fd`` is open on."""
    return message(RTM_GETNSID, 0, RTGENMSG.pack(0) + u32(NETNSA_FD, fd))


def parse_nsid(body: bytes) -> int | None:
    """NETNSA_NSID of an RTM_NEWNSID (None: no id given, NETNSA_NSID_NOT_ASSIGNED)."""
    value = get_u32(attrs(body, RTGENMSG.size), NETNSA_NSID)
    nsid = None if value is None else struct.unpack("=i", struct.pack("=I", value))[0]
    return nsid if nsid is not None and nsid >= 0 else None


def nsids(conn: Conn, names: Iterable[str], where: str) -> dict[str, int]:
    """The ids the socket's namespace (``where``) gives the named namespaces; one gone, not a namespace (a
    placeholder) or given none is left out."""
    out: dict[str, int] = {}
    for name in names:
        try:
            fd = os.open(netns_path(name), os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            continue
        try:
            nsid = parse_nsid(conn.get(f"id of namespace {name} in {where}", nsid_get(fd)).body)
        except NetlinkTimeout:
            raise
        except NetlinkError:  # not a namespace's file (EINVAL)
            continue
        finally:
            os.close(fd)
        if nsid is not None:
            out[name] = nsid
    return out
