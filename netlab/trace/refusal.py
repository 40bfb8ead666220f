"""A packet that reached its destination, which refused it: why, from the sockets bound there.

The walk ends at the namespace whose address the packet carries (after any
DNAT): the routing delivered it. What that host does with it is the
transport's business. A TCP SYN to a port nothing listens on is answered with
a reset, a UDP datagram to a port nothing is bound to with an ICMP port
unreachable, and the sender's socket reports "connection refused" for both.
The packet arrived, the flow failed: ``trace`` says REFUSED and exits 1.

A rule on the way may answer so too: kube-proxy rejects a packet for a Service
without endpoints at the client's node (ICMP port unreachable), and the client's
connection is refused as at once. That packet did not arrive, yet it was no more
lost than a closed port's: ``trace`` says REFUSED at that row, naming the rule
and the node (:func:`rejected`), not LOST. So does a NetworkPolicy's REJECT in
the pod's node (a TCP reset in the pod's name, else an ICMP port unreachable).

Which sockets the destination has on that port (kernel/sockdiag.py, what
``ss -ltun`` lists) tell the usual story, "nothing listens there", from the
rarer ones: a server bound to another address only (``127.0.0.1``), or one that
listens although the packet was refused (then a rule of the destination's own
firewall rejected it before the socket saw it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from netlab.kernel.iptables import command as ipt_command
from netlab.kernel.sockdiag import Bound
from netlab.probe.refused import on_the_port, ss_command

if TYPE_CHECKING:
    from netlab.trace.hops import Hop
    from netlab.trace.verdict import Verdict


def reason(proto: str, netns: str, address: str, port: int, sockets: list[Bound] | None) -> str:
    """Why ``netns`` refused a ``proto`` packet to ``address:port``, given the sockets bound there (None: this
    kernel could not list them)."""
    answer = "a TCP reset" if proto == "tcp" else "an ICMP port unreachable"
    show = ss_command(netns, proto)
    if sockets is None:
        return (f"{netns} answered {proto} port {port} with {answer}, as a kernel does when nothing listens there "
                f"(this kernel cannot list its sockets to netlab: {show})")
    kind, bound = on_the_port(sockets, port, address)
    if kind == "none":
        verb = "listens on" if proto == "tcp" else "is bound to"
        return f"no socket {verb} {proto} port {port} in {netns}; its kernel answered with {answer} ({show})"
    if kind == "elsewhere":
        return (f"{proto} port {port} in {netns} is bound to {bound} only, not to {address}; its kernel answered "
                f"with {answer} ({show})")
    return (f"{proto} port {port} has a socket in {netns} ({bound}), yet {answer} came back: a rule of that "
            f"namespace's own firewall may reject it (ip netns exec {netns} {ipt_command('iptables-save')} -c)")


def rejected(v: Verdict, hops: list[Hop]) -> str | None:
    """Why a rule refused the packet at the row where it stopped (a Service without endpoints: kube-proxy's
    REJECT, its node; a NetworkPolicy's REJECT), when the sender's socket was refused; None when that row dropped
    it or let it go."""
    h = hops[v.lost_at] if not v.delivered and v.lost_at is not None and v.lost_at < len(hops) else None
    said = (h.facts.get("rejected") or h.facts.get("policy_rejected")) if h is not None else None
    return said if isinstance(said, str) else None
