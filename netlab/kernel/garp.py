"""Gratuitous ARP: an interface tells its segment which MAC its new address has.

A pod that leaves a node leaves its address behind in the neighbour tables of
those that talked to it: its node's ``cni0`` and the pods on that bridge keep
``10.244.0.3 lladdr <old MAC> REACHABLE`` for tens of seconds, and the next pod
given that address (the lowest free) is cut off from them until the entry is
probed again. A node's underlay address reused by another node is the same on
the underlay, where the other nodes would send VXLAN packets to a dead MAC.

A real node avoids it by announcing: the CNI bridge plugin sets
``arp_notify=1`` on the pod's interface (plan/sysctls.py) and, in its older
releases, also sends a gratuitous ARP once the address is set (the kernel's
``arp_notify`` fires only when the link comes up or changes its MAC; netlab,
like the plugin, sets the link up before it gives it its address). This is
that packet, as the kernel's own ``arp_notify`` makes it (net/ipv4/devinet.c,
``inetdev_send_gratuitous_arp``): an ARP request to the broadcast address whose
sender and target IP are both the address, target MAC zero.

Every receiver that already has an entry for the address replaces its MAC
(net/ipv4/arp.c, ``arp_process``): a gratuitous ARP overrides the entry even
within its ``locktime`` (1 s), the window in which other replies are ignored
("arp: always override existing neigh entries with gratuitous ARP", Linux
4.12), and leaves it STALE, so the next packet goes to the new MAC and its
reachability is confirmed by a unicast probe. Receivers without an entry
make none (``arp_accept`` is 0).

The packet leaves from a packet socket opened inside the lab's namespace and
bound to the interface there: never the host's.
"""

from __future__ import annotations

import socket
import struct
from ipaddress import IPv4Address

from netlab.kernel import netns as nsmod

ETH_P_ARP = 0x0806
ARPHRD_ETHER = 1
ARPOP_REQUEST = 1
BROADCAST = b"\xff" * 6


def frame(mac: bytes, address: IPv4Address) -> bytes:
    """The Ethernet frame: broadcast, ARP request 'who has ADDRESS, tell ADDRESS' from ``mac``."""
    if len(mac) != 6:
        raise ValueError(f"not an Ethernet address: {mac.hex(':')}")
    ip = address.packed
    arp = struct.pack("!HHBBH", ARPHRD_ETHER, 0x0800, 6, 4, ARPOP_REQUEST) + mac + ip + bytes(6) + ip
    return BROADCAST + mac + struct.pack("!H", ETH_P_ARP) + arp


def announce(netns: str, dev: str, address: IPv4Address) -> None:
    """Send one gratuitous ARP for ``address`` from ``dev`` of ``netns`` (OSError when it cannot be sent)."""
    with nsmod.entered(netns):
        s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW | socket.SOCK_CLOEXEC, 0)
    with s:
        s.bind((dev, 0))  # the name is resolved in the socket's namespace; protocol 0: no frame comes in
        mac = s.getsockname()[4]  # the bound device's own MAC (packet_getname)
        s.send(frame(mac, address))
