"""Where a node's ICMP error takes its source address, as the kernel's __icmp_send picks it.

For a packet the node routed (an input route), with net.ipv4.icmp_errors_use_inbound_ifaddr = 1 the error comes
from an address of the device the packet came in by (:func:`select_address`); else from none, and the route back
to the packet's sender picks it, as for a socket. A REJECT's port unreachable (rejectanswer.py) and a router's time
exceeded (ttlloop.py) are sent so.
"""

from __future__ import annotations

from ipaddress import ip_address, ip_interface

from netlab.trace.facts import InetAddress, LinkFacts

INBOUND = "net.ipv4.icmp_errors_use_inbound_ifaddr"
RT_SCOPE_LINK = 253


def select_address(links: dict[str, LinkFacts], dev: str, dst: str) -> str | None:
    """The kernel's inet_select_addr(dev, dst, RT_SCOPE_LINK), as icmp_send calls it for the inbound device: the
    first primary address of ``dev`` of at most link scope whose subnet holds ``dst``, else its first such address;
    a device without one lends the first other device's primary address of global scope (link scope and lo's
    127.0.0.1, host scope, skipped). The kernel walks the namespace's devices in the order they came into it; the
    order ``links`` has them in (their ifindex, as the kernel dumps them) is taken for it. An address known only as
    text (``LinkFacts.addresses``, from a kernel that did not say) is taken for a primary one of global scope."""
    def primary(link: LinkFacts) -> list[InetAddress]:
        held = link.inet or tuple(InetAddress(a) for a in link.addresses)
        return [a for a in held if not a.secondary and a.scope <= RT_SCOPE_LINK]

    def ip(a: InetAddress) -> str:
        return a.cidr.split("/")[0]

    on = links.get(dev)
    own = primary(on) if on is not None else []
    near = [a for a in own if dst and ip_address(dst) in ip_interface(a.cidr).network]
    if near or own:
        return ip((near or own)[0])
    return next((ip(a) for link in links.values() for a in primary(link) if a.scope != RT_SCOPE_LINK), None)
