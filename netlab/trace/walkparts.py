"""What every step of a walk works on, declared once: the attributes :class:`~netlab.trace.walk.Walker` holds,
which its parts (routesteps.py, arrivalsteps.py, vxlansteps.py, natsteps.py, l2steps.py) read and set as their own.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from netlab.trace import nat

if TYPE_CHECKING:
    from netlab.trace.facts import Kernel
    from netlab.trace.flow import Flow
    from netlab.trace.hops import Rows
    from netlab.trace.labmap import LabMap
    from netlab.trace.vxlansteps import Encap


class WalkParts:
    """The packet and the rows of one walk (set by Walker.__init__ and Walker.walk)."""

    k: Kernel  # asked at every namespace
    lab: LabMap
    role: str  # "request" or "reply": which packet of the flow this is
    direction: str  # "forward" or "reply": the rows'
    rows: Rows
    flow: Flow  # the packet as it is now, its translations applied
    size: int  # its IP length; each VXLAN encapsulation adds 50
    stack: list[Encap]  # the VXLAN encapsulations under way, innermost last (an encapsulated packet is not NATed)
    _ct_hit: dict[str, nat.Hit]  # per namespace: found in PREROUTING, used in POSTROUTING
    _pre_nat: dict[str, Flow]  # per namespace: the packet before its PREROUTING translation
    _unseen: tuple[str, str] | None  # a bridge the packet skips (bridged DNAT)
    _port_in: str | None  # the bridge port it came in on, which it may go back out (hairpin)
    _fragments: int  # a VXLAN packet fragmented leaving its node: no fragment is bigger than this

    def _nat_commands(self, ns: str, hit: nat.Hit, which: str) -> list[str]:
        """nat.commands, and no chain of kube-proxy's table to list on a node whose table is gone."""
        table = self.k.nft_table(ns) if ns in self.lab.nft_netns else None
        return nat.commands(self.lab, ns, hit, which, kube_proxy_table=table is None or table.exists)
