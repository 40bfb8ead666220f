"""What the fake kernel (netlab.kernel.fake) holds of a namespace: its links and their state, addresses, routes,
neighbour and FDB entries, rules, sysctls and netfilter tables, as plain data."""

from __future__ import annotations

import errno
from dataclasses import dataclass, field

from netlab.kernel.base import NftText
from netlab.kernel.fake_iptables import FakeError, FTable
from netlab.plan.resources import Address, Route, Rule


@dataclass
class FLink:
    name: str
    index: int
    kind: str | None
    mtu: int
    mac: str
    up: bool
    master: str | None = None
    hairpin: bool = False
    peer: tuple[str, str] | None = None  # (namespace, name) of a veth's other end
    vxlan: dict = field(default_factory=dict)
    group: int = 0
    alias: str | None = None
    txqlen: int = 1000
    # A bridge port's STP state while it is enabled (up, with carrier, in a bridge that is up); the kernel
    # says disabled otherwise, and makes it forwarding again when it is enabled again (STP off)
    port_state: str = "forwarding"


@dataclass
class FNetns:
    name: str
    tag: str | None = None
    links: dict[str, FLink] = field(default_factory=dict)
    addrs: list[Address] = field(default_factory=list)
    routes: list[Route] = field(default_factory=list)  # not the kernel's connected and local routes
    neighs: dict[tuple[str, str], tuple[str, int]] = field(default_factory=dict)  # (dev, ip) -> (mac, state)
    fdb: list[tuple[str, str, str]] = field(default_factory=list)  # (dev, mac, dst)
    rules: list[Rule] = field(default_factory=list)
    sysctls: dict[str, str] = field(default_factory=dict)
    tables: dict[str, dict[str, FTable]] = field(default_factory=dict)  # backend -> table -> chains
    nft: dict[tuple[str, str], NftText] = field(default_factory=dict)  # nf_tables tables, as last written
    next_index: int = 2

    def link(self, name: str) -> FLink:
        try:
            return self.links[name]
        except KeyError:
            raise FakeError(errno.ENODEV, f"{name} does not exist in {self.name}") from None
