"""A proxy neighbour entry a hand added (``ip neigh add proxy IP [dev DEV]``): no plan holds one.

The node answers ARP for the address with its own MAC (on DEV, or on every device without one) where the address
is routed out of another device and forwarding is on: a pod's traffic for it goes to the node. A real node
(flanneld, the CNI plugins, kube-proxy) has none, so status says one is extra and up deletes it; a rollback adds
it back as it was (kernel/rtnl_neigh)."""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address
from typing import ClassVar

from netlab.plan.resource_base import Resource


@dataclass(frozen=True)
class ProxyNeigh(Resource):
    kind: ClassVar[str] = "proxy-neigh"
    dst: IPv4Address
    dev: str | None = None  # None: every device of the namespace

    @property
    def key(self) -> tuple:
        return ("proxy-neigh", self.netns, self.dev or "", str(self.dst))

    def _spec(self) -> str:
        return f"proxy {self.dst}" + (f" dev {self.dev}" if self.dev else "")

    def command(self) -> str:
        return f"ip -n {self.netns} neigh add {self._spec()}"

    def describe(self) -> str:
        return f"{self._spec().replace('proxy', 'proxy neighbour', 1)} in {self.netns}"

    def kept_words(self) -> str:
        """What it makes the node do, as an extra's words."""
        return f"the node answers ARP for {self.dst} on {self.dev or 'every device'} with its own MAC"
