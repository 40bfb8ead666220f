"""What every plan resource is: a frozen dataclass of one kernel object in one namespace.

Its identity ``key`` (what makes two objects "the same one" for ``status`` and
convergence), the ``ip(8)``-style line for learners, its JSON form and the
short name status prints. The kernel objects themselves are in
:mod:`netlab.plan.resources` (links, addresses, routes...) and
:mod:`netlab.plan.netfilter_resources` (the lab's iptables and nftables tables).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from typing import Any, ClassVar


@dataclass(frozen=True)
class Resource:
    kind: ClassVar[str] = "resource"
    netns: str

    @property
    def key(self) -> tuple:
        raise NotImplementedError

    def command(self) -> str:
        """The equivalent ip(8)/bridge(8)/sysctl command, for learners."""
        raise NotImplementedError

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind}
        for f in fields(self):
            value = getattr(self, f.name)
            out[f.name] = str(value) if isinstance(value, (IPv4Address, IPv4Network, IPv4Interface)) else value
        return out

    def describe(self) -> str:
        """Short human name used in status output."""
        return f"{self.kind} {' '.join(str(k) for k in self.key[1:])}"
