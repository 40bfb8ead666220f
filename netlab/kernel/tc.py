"""Traffic control: the root qdisc of an interface, set and read back over rtnetlink.

What ``tc qdisc replace dev eth0 root tbf rate 10mbit burst 12500 latency 50ms``
sends, through pyroute2's tc encoder (its ``tbf``/``netem`` option builders
port tc(8)'s own arithmetic: the token bucket's ``buffer`` in scheduler ticks,
the rate table). A socket is opened in the namespace for each call (a
netlink socket keeps the namespace it was made in).

- rate only: ``tbf`` as the root qdisc (handle 1:);
- delay (and jitter): ``netem`` as the root (handle 1:), and with a rate a
  ``tbf`` child under its one class (parent 1:1, handle 10:), the layout
  tc-netem(8) shows for "delay plus rate".

Packets a device *sends* pass its root qdisc; what it receives does not.
Deleting the root qdisc gives the device its default back (``noqueue`` for
veth, bridge and vxlan devices).
"""

from __future__ import annotations

import errno
from dataclasses import dataclass

from netlab.kernel import netns as nsmod

TC_H_ROOT = 0xFFFFFFFF
ROOT_HANDLE = 0x10000  # 1:
CHILD_HANDLE = 0xA0000  # 10:
LATENCY = "50ms"  # how long a packet may wait in the token bucket before tbf drops it
# The kernel's own root qdiscs: an interface showing one of these is not impaired.
DEFAULT_KINDS = frozenset({"noqueue", "pfifo_fast", "fq_codel", "mq", "fq", "pfifo", "noop"})


class TcError(OSError):
    """The kernel refused a qdisc change: errno and a line saying which."""


@dataclass(frozen=True)
class Shaping:
    """What an interface's qdiscs do to its egress (None: not set)."""

    rate_bits: int | None = None  # bits a second (tbf)
    delay_us: int | None = None  # netem
    jitter_us: int | None = None
    other: str | None = None  # a root qdisc netlab does not make (htb, sfq ...), by kind

    @property
    def empty(self) -> bool:
        return not (self.rate_bits or self.delay_us or self.jitter_us or self.other)


def burst_bytes(rate_bits: int) -> int:
    """The token bucket's depth: 10 ms of the rate, at least two full-size frames (tc needs >= MTU)."""
    return max(rate_bits // 8 // 100, 3200)


def _ipr():  # noqa: ANN202 - pyroute2's IPRoute, opened in the current thread's namespace
    from pyroute2 import IPRoute

    return IPRoute(use_socket=nsmod.netlink_socket())


def _index(ipr, netns: str, iface: str) -> int:  # noqa: ANN001
    found = ipr.link_lookup(ifname=iface)
    if not found:
        raise TcError(errno.ENODEV, f"{iface} does not exist in {netns}")
    return int(found[0])


def _tbf(rate_bits: int) -> dict:
    return {"rate": f"{rate_bits}bit", "burst": burst_bytes(rate_bits), "latency": LATENCY}


def replace_root(netns: str, iface: str, rate_bits: int | None, delay_us: int | None = None,
                 jitter_us: int | None = None) -> None:
    """Make ``iface``'s egress shaped so (the old root qdisc goes first: its kind may differ)."""
    from pyroute2.netlink.exceptions import NetlinkError

    with nsmod.entered(netns), _ipr() as ipr:
        idx = _index(ipr, netns, iface)
        step = f"delete the root qdisc of {iface} in {netns}"
        try:
            qlen = ipr.get_links(idx)[0].get_attr("IFLA_TXQLEN")
            _delete_root(ipr, idx)
            if delay_us:
                step = f"add netem (delay) on {iface} in {netns}"
                ipr.tc("add", "netem", idx, handle=ROOT_HANDLE, delay=delay_us, jitter=jitter_us or 0)
                if rate_bits:
                    step = f"add tbf (rate) under netem on {iface} in {netns}"
                    ipr.tc("add", "tbf", idx, handle=CHILD_HANDLE, parent=ROOT_HANDLE + 1, **_tbf(rate_bits))
            elif rate_bits:
                step = f"add tbf (rate) on {iface} in {netns}"
                ipr.tc("add", "tbf", idx, handle=ROOT_HANDLE, **_tbf(rate_bits))
            if qlen == 0 and ipr.get_links(idx)[0].get_attr("IFLA_TXQLEN") != 0:
                # A qdisc attached to a txqueuelen-0 device (the CNI plugin's veths, flannel.1) makes
                # the kernel give it the default 1000 (qdisc_create). tbf and netem keep their own
                # limits, so the device gets its 0 back and stays as the CNI plugin made it.
                step = f"set txqueuelen 0 on {iface} in {netns}"
                ipr.link("set", index=idx, txqlen=0)
        except NetlinkError as exc:
            why = "the kernel lacks this qdisc" if exc.code == errno.ENOENT else errno.errorcode.get(exc.code, "")
            raise TcError(exc.code, f"{step}: {why} ({exc})") from None


def _delete_root(ipr, idx: int) -> None:  # noqa: ANN001
    from pyroute2.netlink.exceptions import NetlinkError

    try:
        ipr.tc("del", index=idx, root=True)
    except NetlinkError as exc:
        # ENOENT/EINVAL: only the kernel's default is there (deleting noqueue is "invalid")
        if exc.code not in (errno.ENOENT, errno.EINVAL):
            raise


def delete_root(netns: str, iface: str) -> None:
    """Give ``iface`` its default root qdisc back (nothing to do when it has it)."""
    from pyroute2.netlink.exceptions import NetlinkError

    with nsmod.entered(netns), _ipr() as ipr:
        found = ipr.link_lookup(ifname=iface)
        if not found:
            return  # the interface is gone, and its qdiscs with it
        try:
            _delete_root(ipr, int(found[0]))
        except NetlinkError as exc:
            raise TcError(exc.code, f"delete the root qdisc of {iface} in {netns}: {exc}") from None


def read(netns: str, ifaces: list[str]) -> dict[str, Shaping | None]:
    """Each interface's shaping as the kernel reports it (None: no such interface)."""
    with nsmod.entered(netns), _ipr() as ipr:
        names = {int(link["index"]): link.get_attr("IFLA_IFNAME") for link in ipr.get_links()}
        by_name = {n: i for i, n in names.items()}
        qdiscs: dict[int, list] = {}
        for msg in ipr.get_qdiscs():
            qdiscs.setdefault(int(msg["index"]), []).append(msg)
    out: dict[str, Shaping | None] = {}
    for iface in ifaces:
        idx = by_name.get(iface)
        out[iface] = None if idx is None else shaping_of(qdiscs.get(idx, []))
    return out


def shaping_of(msgs: list) -> Shaping:
    """The shaping one interface's qdisc messages (RTM_NEWQDISC of a dump) describe."""
    rate = delay = jitter = None
    other = None
    for msg in msgs:
        kind = msg.get_attr("TCA_KIND")
        opts = msg.get_attr("TCA_OPTIONS")
        if kind == "tbf" and opts is not None:
            parms = opts.get_attr("TCA_TBF_PARMS")
            if parms is not None:
                rate = int(parms["rate"]) * 8
        elif kind == "netem" and opts is not None:
            from pyroute2.netlink.rtnl.tcmsg.common import tick_in_usec

            delay = round(int(opts["delay"]) / tick_in_usec) or None
            jitter = round(int(opts["jitter"]) / tick_in_usec) or None
        elif msg["parent"] == TC_H_ROOT and kind not in DEFAULT_KINDS:
            other = kind
    return Shaping(rate, delay, jitter, other)
