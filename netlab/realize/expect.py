"""What the kernel must hold in each namespace of a lab: the plan, and what the plan implies.

The plan lists what netlab makes. A namespace also holds what the kernel
made with it, which the lab needs as it came, and owns like the rest:

- ``lo`` up, with 127.0.0.1/8 (``lo`` down in a pod breaks every local
  connection, the echo server's health checks too);
- the three default policy-routing rules (``0: lookup local``, ``32766:
  lookup main``, ``32767: lookup default``); any other rule is not the lab's;
- the far end of every veth (a pod's ``eth0``) up, with its MAC and MTU;
- the ARP and forwarding sysctls of every interface that silently break a
  lab when changed: ``arp_ignore``/``arp_announce``/``arp_filter`` 0, as the
  plan writes them for ``all`` and ``default`` (which each new link copies),
  ``rp_filter`` 0 (the effective value is the larger of ``all`` and the
  interface's), and ``forwarding`` equal to the namespace's ``ip_forward``;
- each interface's ``disable_ipv6`` as the plan writes ``default``'s (1): one
  a hand turns back to 0 gives it IPv6 (fe80::, router solicitations, MLD)
  while ``all`` and ``default`` still say off. Not on a link under IPv6's
  minimum MTU (1280), which the kernel gives no IPv6 at all;
- the kernel's ``ip_default_ttl`` (64) and ``icmp_echo_ignore_all`` (0) of
  every namespace: the TTL a learner reads in ping's ``ttl=`` (64, 62 across
  two routers), and whether a pod answers ping at all.

Sysctls that netlab neither sets nor guards (hundreds of them) are out of
scope: docs/reliability.md lists what the lab owns.
"""

from __future__ import annotations

from netlab.model.sysctl_names import interface_of as interface_of_name
from netlab.plan.build import Plan
from netlab.plan.resources import Address, Link, Loopback, Netns, Resource, Rule, Sysctl, Veth, VethPeer
from netlab.plan.sysctls import ARP_SYSCTLS, IPV6_MIN_MTU, KERNEL_KEPT, ipv6_off

from ipaddress import IPv4Interface

DEFAULT_RULES = ((0, 255), (32766, 254), (32767, 253))  # (priority, table): local, main, default


def expected(plan: Plan) -> dict[str, list[Resource]]:
    """Namespace -> every object it must hold, plan order first, then what the kernel made."""
    out: dict[str, list[Resource]] = {ns: [] for ns in plan.netns}
    forwarding: dict[str, str] = {ns: "0" for ns in plan.netns}
    ipv6_default: dict[str, str] = {}  # what a new link's disable_ipv6 copies, where the plan writes it
    for r in plan.resources:
        if isinstance(r, Netns):
            continue
        out.setdefault(r.netns, []).append(r)
        if isinstance(r, Sysctl) and r.name == "net.ipv4.ip_forward":
            forwarding[r.netns] = r.value
        if isinstance(r, Sysctl) and r.name == "net.ipv6.conf.default.disable_ipv6":
            ipv6_default[r.netns] = r.value
    for r in plan.of_kind("veth"):
        assert isinstance(r, Veth)
        out.setdefault(r.peer_netns, []).append(VethPeer(netns=r.peer_netns, name=r.peer_name, mtu=r.mtu,
                                                         mac=r.peer_mac, txqlen=r.txqlen))
    for ns, items in out.items():
        planned = {(r.netns, r.kind, getattr(r, "name", None)) for r in items if isinstance(r, Sysctl)}
        items.append(Loopback(netns=ns))
        items.append(Address(netns=ns, dev="lo", address=IPv4Interface("127.0.0.1/8"), scope="host"))
        items += [Rule(netns=ns, priority=prio, table=table) for prio, table in DEFAULT_RULES]
        sysctls = [Sysctl(netns=ns, name=key, value=value) for key, value in KERNEL_KEPT]
        for link in [r for r in items if isinstance(r, Link) and not isinstance(r, Loopback)]:
            conf = f"net.ipv4.conf.{link.name}"
            sysctls += [Sysctl(netns=ns, name=f"{conf}.{key}", value="0") for key in (*ARP_SYSCTLS, "rp_filter")]
            sysctls.append(Sysctl(netns=ns, name=f"{conf}.forwarding", value=forwarding.get(ns, "0")))
            if ns in ipv6_default and link.mtu >= IPV6_MIN_MTU:  # below it the kernel gives the link no IPv6
                sysctls.append(Sysctl(netns=ns, name=ipv6_off(link.name)[0], value=ipv6_default[ns]))
        items += [s for s in sysctls if (ns, "sysctl", s.name) not in planned]
    return out


def interface_of(sysctl: Sysctl) -> str | None:
    """``net.ipv4.conf.flannel.1.arp_ignore`` -> ``flannel.1`` (None for all/default and others); the interface of
    an IPv6 switch too (``net.ipv6.conf.cni0.disable_ipv6`` -> ``cni0``)."""
    return interface_of_name(sysctl.name)
