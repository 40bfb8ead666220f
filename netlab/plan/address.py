"""An IPv4 address of the plan (``ip addr``), as the CNI plugins, Flannel and netlab add it: on a real node's
device, valid and preferred forever, with the connected route the kernel makes for it (no ``noprefixroute``).

Importable from :mod:`netlab.plan.resources` with the other kernel objects.
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Interface
from typing import Any, ClassVar

from netlab.plan.resource_base import Resource

def broadcast_of(address: IPv4Interface) -> IPv4Address | None:
    """The broadcast address an address gets on a real node (``brd`` in ``ip addr``).

    The netlink library the CNI plugins use fills IFA_BROADCAST in itself for an
    IPv4 address shorter than /31 (so ``brd 10.244.0.255`` on cni0 and on a pod's
    eth0), and a DHCP client sets it on a node's NIC; /31 and /32 (flannel.1's
    10.244.0.0/32) have none.
    """
    net = address.network
    return net.broadcast_address if net.prefixlen < 31 else None


@dataclass(frozen=True)
class Address(Resource):
    kind: ClassVar[str] = "address"
    dev: str
    address: IPv4Interface
    broadcast: IPv4Address | None = None
    scope: str = "global"
    metric: int = 0  # its connected route's (IFA_RT_PRIORITY); the lab's are 0, as the CNI plugins add them
    # `ip addr add ... noprefixroute`: the kernel makes no connected route for it (none of the lab's has it: the
    # pods' and Services' traffic to the subnet, and the routes through a gateway in it, need that route)
    noprefixroute: bool = False
    # Its lifetimes in seconds (`valid_lft 40 preferred_lft 40`), None forever (the lab's, as the plugins add them):
    # the kernel deletes an address whose valid lifetime runs out. Observed: the seconds left
    valid_lft: int | None = None
    preferred_lft: int | None = None
    UNSAID: ClassVar[tuple[str, ...]] = ("noprefixroute", "valid_lft", "preferred_lft")  # said only when set

    @property
    def key(self) -> tuple:
        return ("addr", self.netns, self.dev, str(self.address))

    def command(self) -> str:
        brd, metric = f" brd {self.broadcast}" if self.broadcast else "", f" metric {self.metric}" * bool(self.metric)
        scope = f" scope {self.scope}" if self.scope != "global" else ""
        flags = " noprefixroute" * self.noprefixroute + (f" valid_lft {lifetime(self.valid_lft)} preferred_lft "
                                                         f"{lifetime(self.preferred_lft)}" if self.lifetimes else "")
        return f"ip -n {self.netns} addr add {self.address}{brd}{scope}{metric} dev {self.dev}{flags}"

    @property
    def lifetimes(self) -> bool:
        """Not valid and preferred forever."""
        return self.valid_lft is not None or self.preferred_lft is not None

    def to_json(self) -> dict[str, Any]:
        out = super().to_json()
        for name in self.UNSAID:
            if getattr(self, name) is None or getattr(self, name) is False:
                out.pop(name)
        return out

    def describe(self) -> str:
        return f"address {self.address} on {self.dev} in {self.netns}"


def address_with_brd(netns: str, dev: str, address: IPv4Interface) -> Address:
    """An address as the real tools add it: with its broadcast (see :func:`broadcast_of`)."""
    return Address(netns=netns, dev=dev, address=address, broadcast=broadcast_of(address))


def lifetime(seconds: int | None) -> str:
    """``forever`` or the seconds, as ``ip addr add`` takes a lifetime."""
    return "forever" if seconds is None else f"{seconds}"
