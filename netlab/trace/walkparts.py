"""What every step of a walk works on, declared once: the attributes :class:`~netlab.trace.walk.Walker` holds,
which its parts (routesteps.py, arrivalsteps.py, vxlansteps.py, natsteps.py, l2steps.py) read and set as their own.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from netlab.trace import nat

if TYPE_CHECKING:
    from netlab.trace.facts import Kernel, NatRule
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
    _asked: str | None  # the MAC whose ARP answer the last neighbour lookup waited for (it crossed a bridge first)
    _src_mac: str | None  # the frame's source MAC: the device that sent it (a bridge switching it keeps it)
    # per (netns, bridge, MAC): the port by which the packet's own frame came into that bridge with that source MAC,
    # which the bridge learned there before it switched the frame (source learning on ingress)
    _taught: dict[tuple[str, str, str], str]
    _fragments: int  # a VXLAN packet fragmented leaving its node: no fragment is bigger than this
    # a node's fault that dooms the packet as it goes on (a pod CIDR's route missing, or gone with its link set down:
    # out the default route to the underlay's gateway, which drops it): (why, fix), said where it is really dropped
    _doomed: tuple[str, str | None] | None
    # the internet gateway's route for a LoadBalancer IP that sent the packet to a node the plan does not
    # (strayroutes.balancer_route): (why, fix), said again where that node drops it (no local endpoint)
    _lb_drift: tuple[str, str | None] | None

    def _nat_commands(self, ns: str, hit: nat.Hit, which: str) -> list[str]:
        """nat.commands, and no chain of kube-proxy's table to list on a node whose table is gone; for a masquerade
        (or its reversal on the replies) an iptables rule's counter that moved says the nat table did it."""
        table = self.k.nft_table(ns) if ns in self.lab.nft_netns else None
        masquerade = (which == "dst") != (hit.direction == "orig")
        return nat.commands(self.lab, ns, hit, which, kube_proxy_table=table is None or table.exists,
                            by_iptables=masquerade and table is not None and not nat.dnated_here(hit)
                            and self._masquerade_rule(ns) is not None)

    def _masquerade_rule(self, ns: str) -> NatRule | None:
        """The one MASQUERADE or SNAT rule of the nat table whose counter went up while the trace ran (the nat
        table sees a connection's first packet only, so it counts 1); None: none or several. In nftables mode
        Flannel's rules are iptables; kube-proxy's masquerading chain counts nothing."""
        table = self.k.nat_table(ns)
        moved = [r for r in table.rules if r.delta and r.target in ("MASQUERADE", "SNAT")] if table else []
        return moved[0] if len(moved) == 1 else None

    def _snat_row(self, ns: str, hit: nat.Hit, old: Flow) -> tuple[str, list[str], dict[str, Any]]:
        """The text, commands and facts of a source change's row (a masquerade, a reply's un-DNAT); a masquerade
        names the rule that did it, by its counter (:meth:`_masquerade_rule`)."""
        text = nat.describe(self.lab, "src", hit, old, self.flow)
        facts: dict[str, Any] = {"conntrack": hit.entry.text(), "before": str(old), "after": str(self.flow)}
        # in nftables mode a connection kube-proxy DNATed here is masqueraded by its own chain, never iptables'
        kube_proxys = ns in self.lab.nft_netns and nat.dnated_here(hit)
        rule = self._masquerade_rule(ns) if hit.direction == "orig" and not kube_proxys else None
        if rule is not None:
            text += f"; by `{rule.line}` (its counter went up by {rule.delta} during the trace)"
            facts.update(rule=rule.line, rule_counted=rule.delta)
        return text, self._nat_commands(ns, hit, "src"), facts
