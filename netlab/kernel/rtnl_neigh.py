"""Neighbour entries' flags and proxy entries (``ip neigh ... extern_learn``, ``ip neigh add proxy IP [dev DEV]``).

* ``extern_learn`` (NTF_EXT_LEARNED): an entry the kernel never ages out nor garbage-collects (neigh_periodic_work
  and neigh_forced_gc skip it), whatever its state: one a hand adds ``nud reachable extern_learn`` stays as a
  permanent one does, a VXLAN or bridge FDB entry ``dynamic extern_learn`` is not forgotten after the ageing time.
  An administrative replace without it clears it (neigh_update_flags), as does flanneld's.
* a proxy entry (the kernel's pneigh table, NTF_PROXY): the node answers ARP for its address with its own MAC,
  on its device (any device without one), where the address is routed out of another device and forwarding is on
  (arp_process). A real node has none. Dumped apart: RTM_GETNEIGH with ndm_flags NTF_PROXY.
"""

from __future__ import annotations

from netlab.kernel.netlink import NLM_F_CREATE, NLM_F_EXCL, ipv4, message
from netlab.kernel.rtnl import AF_INET, NDA_DST, NDMSG, RTM_DELNEIGH, RTM_GETNEIGH, RTM_NEWNEIGH

NTF_PROXY, NTF_EXT_LEARNED = 0x08, 0x10
NEIGH_FLAGS = ((NTF_EXT_LEARNED, "extern_learn"),)  # the flags that change what the kernel does with an entry


def flag_words(flags: int) -> tuple[str, ...]:
    """An entry's ndm_flags as `ip neigh` says those of :data:`NEIGH_FLAGS`."""
    return tuple(word for bit, word in NEIGH_FLAGS if flags & bit)


def flag_bits(words: tuple[str, ...]) -> int:
    return sum(bit for bit, word in NEIGH_FLAGS if word in words)


def proxy_dump() -> bytes:
    """``ip neigh show proxy``."""
    return message(RTM_GETNEIGH, 0, NDMSG.pack(AF_INET, 0, 0, NTF_PROXY, 0))


def proxy_add(index: int, dst: str) -> bytes:
    """``ip neigh add proxy DST [dev IDX]`` (index 0: every device)."""
    return message(RTM_NEWNEIGH, NLM_F_CREATE | NLM_F_EXCL, NDMSG.pack(AF_INET, index, 0, NTF_PROXY, 0) +
                   ipv4(NDA_DST, dst))


def proxy_del(index: int, dst: str) -> bytes:
    """``ip neigh del proxy DST [dev IDX]``."""
    return message(RTM_DELNEIGH, 0, NDMSG.pack(AF_INET, index, 0, NTF_PROXY, 0) + ipv4(NDA_DST, dst))
