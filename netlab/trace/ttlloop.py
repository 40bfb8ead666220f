"""A packet that comes back to where it was, as it was: a loop, said once, with where its TTL runs out.

The walk asks kernels whose answers do not change while it asks: a packet in the same state at the same place
again (the same device, addresses, encapsulation) goes round the same way for ever, as far as the rules go. The
kernel's packet does not: every router that forwards it takes 1 from its TTL (ip_forward), and the one that gets it
with TTL 1 drops it and sends its sender an ICMP time exceeded (ttl exceeded in transit), as its own packet, from
the address its route back to the sender picks, or with net.ipv4.icmp_errors_use_inbound_ifaddr = 1 from an address
of the device the packet came in by (icmpsource.py). A socket sends with its namespace's net.ipv4.ip_default_ttl;
a bridge switches a frame without touching its TTL, and so does br_netfilter's bridged DNAT (routesteps.py).
Measured (tcpdump on both ends of a node and the internet's gateway that route a LoadBalancer IP to each other): a
client's TTL 64 reaches the node with 63, 61, ..., 1, and the node sends the time exceeded; TTL 63, the gateway.

Pure: the rows and the kernel's answers come in.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Interface
from typing import Any

from netlab.trace.facts import Kernel, RouteFailure
from netlab.trace.flow import Flow
from netlab.trace.hops import Hop
from netlab.trace.icmpsource import INBOUND, select_address

DEFAULT_TTL = "net.ipv4.ip_default_ttl"


@dataclass
class Loop:
    """The loop row's parts: where the TTL runs out (netns, the device the packet came in by), and what it says."""

    netns: str
    device: str
    decision: str
    problem: str
    commands: list[str] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)


def routed(h: Hop) -> bool:
    """A row where a router forwards the packet (its TTL taken 1 from): a route looked up for a packet that came
    in by a device, not br_netfilter's lookup of a frame the bridge keeps, nor a VXLAN packet's outer header's."""
    return h.kind == "route" and isinstance(h.facts.get("iif"), str) and not h.facts.get("bridged_dnat") \
        and not (h.observe is not None and h.observe.encapsulated)


def _sysctl(k: Kernel, ns: str, key: str) -> str | None:
    read = getattr(k, "sysctl", None)
    return read(ns, key) if read is not None else None


def _name(h: Hop) -> str:
    return h.where.split()[-1]


def _hop_words(h: Hop, names: dict[str, str]) -> str:
    gw = h.facts.get("gateway")
    to = f" to {gw} ({names[gw]})" if gw in names else f" to {gw}" if gw else ""
    return f"{_name(h)} routes it out of {h.facts.get('oif') or h.device}{to}"


def _source(k: Kernel, ns: str, iif: str, client: str) -> tuple[str | None, str, str]:
    """The time exceeded's source address, why it is that one, and the command that shows it."""
    if _sysctl(k, ns, INBOUND) == "1":
        return (select_address(k.links(ns), iif, client),
                f"an address of {iif}, the device the packet came in by (net.ipv4.icmp_errors_use_inbound_ifaddr "
                f"= 1)", f"ip netns exec {ns} sysctl {INBOUND}")
    cmd = f"ip -n {ns} route get {client}"
    try:
        back = k.route_get(ns, client)
    except RouteFailure as exc:
        return None, f"none: {ns} has no route back to {client} ({exc.message}), so the error is not sent", cmd
    return back.prefsrc, f"the source of its route back to {client}", cmd


def _redirected(k: Kernel, dies: Hop, iif: str, client: str) -> bool:
    """Whether the router where the TTL runs out sent ``client`` an ICMP redirect on each lap before: it routes
    the packet out of the device it came in by, ``client`` is on that device's own link, and it sends redirects
    (net.ipv4.conf.all or .IIF .send_redirects, 1 by default). A redirect takes the per-host token of the ICMP
    rate limit (icmp_ratelimit, 1s) for that address, so the time exceeded that follows within the second is held
    back (nstat's IcmpOutRateLimitHost counts it). Measured: 3 nodes that route a pod's address round, two of them
    masquerading: the node where the TTL runs out counts IcmpOutRedirects, then IcmpOutRateLimitHost; no ICMP time
    exceeded leaves it."""
    if (dies.facts.get("oif") or dies.device) != iif or not client:
        return False
    if "0" == _sysctl(k, dies.netns, "net.ipv4.conf.all.send_redirects") == \
            _sysctl(k, dies.netns, f"net.ipv4.conf.{iif}.send_redirects"):
        return False
    link = k.links(dies.netns).get(iif)
    try:
        return link is not None and any(IPv4Address(client) in IPv4Interface(a).network for a in link.addresses)
    except ValueError:
        return False


def _arrived_from(hops: list[Hop], dies: Hop, flow: Flow) -> str:
    """The packet's source as it came in to the router where its TTL runs out (a masquerade on the way round
    may have given it one other than its sender's): the time exceeded is addressed there."""
    at = next(i for i, h in enumerate(hops) if h is dies)
    came = next((h.observe.flow.src for h in reversed(hops[:at]) if h.netns == dies.netns and h.observe is not None
                 and h.observe.direction == "in" and not h.observe.encapsulated), None)
    return came or flow.src or ""


def explain(k: Kernel, names: dict[str, str], hops: list[Hop], start: int, sender: str, flow: Flow,
            renat: bool = False) -> Loop:
    """The loop whose lap is ``hops[start:]`` (the packet then came back to the state it was in at ``start``), sent
    by ``sender``'s socket: which routers take it round, and where its TTL runs out. ``names``: address -> name.
    ``renat``: it came back to the same place and destination with another source, a masquerade's on the way (a
    new one each lap: conntrack's tuple is new each time, so is its mapping)."""
    lap = hops[start:]
    before = [h for h in hops[:start] if routed(h)]
    routers = [h for h in lap if routed(h)]
    back = lap[0] if lap else hops[-1]
    where = f"{_name(back)} {back.device}"
    if not routers:  # nothing on the way takes from its TTL: it goes round as long as the frames do
        return Loop(back.netns, back.device, f"back on {where} as it was: a loop no router is on",
                    f"a loop: the packet comes back to {where} as it was, and no router on the way round forwards it "
                    "(no TTL is taken from it): it goes round for as long as the devices carry it",
                    facts={"loop": [], "loop_at": back.netns})
    try:
        ttl = int(_sysctl(k, sender, DEFAULT_TTL) or 64)
    except ValueError:
        ttl = 64
    if ttl <= len(before):  # it never gets round: the TTL runs out on the way in
        dies, laps = before[ttl - 1], 0
    else:
        n = ttl - len(before) - 1
        dies, laps = routers[n % len(routers)], n // len(routers)
    iif = str(dies.facts["iif"])
    client = _arrived_from(hops, dies, flow)
    src, whose, shown = _source(k, dies.netns, iif, client)
    by = ", ".join(_hop_words(h, names) for h in routers)
    times = {1: "once", 2: "twice"}.get(len(before), f"{len(before)} times")
    took = f" and forwarded {times} on its way there" if before else ""
    rounds = f"after {laps} time{'s' if laps != 1 else ''} round" if ttl > len(before) else "before the loop"
    held = bool(src) and laps > 0 and dies in routers and _redirected(k, dies, iif, client)
    answer = (f"sends {client} an ICMP time exceeded (ttl exceeded in transit) from {src}, {whose}" if src else
              f"sends no ICMP time exceeded: {whose}")
    if held:
        answer = (f"would send {client} an ICMP time exceeded from {src}, but on each lap before it sent {client} an "
                  f"ICMP redirect (it routes the packet out of {iif}, the device it came in by, and {client} is on "
                  f"{iif}'s own link), which takes the ICMP rate limit's token for {client}: the time exceeded is "
                  f"held back (nstat's IcmpOutRateLimitHost counts it), and none comes back")
        shown = f"ip netns exec {dies.netns} nstat -az IcmpOutRedirects IcmpOutRateLimitHost"
        src = None
    ended = " (a TCP client's connection fails at once)" if flow.proto == "tcp" and src else ""
    back_as = (f"back on {where} to {flow.dst}, with the source a masquerade on the way gave it (a new one each "
               "lap: each lap's packet is a new flow to conntrack, with a new mapping)" if renat else
               f"back on {where} as it was")
    if renat and client != (hops[0].observe.flow.src if hops[0].observe is not None else client):
        answer = answer.replace(f" {client} ", f" {client} (the source it came in with, a masquerade's, not its "
                                "sender's) ", 1)
    problem = (f"a loop: {by}, and the packet is {back_as}, round and round; each router that "
               f"forwards it takes 1 from its TTL: sent with TTL {ttl} ({_name(hops[0])}'s {DEFAULT_TTL}){took}, "
               f"it reaches {_name(dies)} on {iif} with TTL 1 {rounds}, and {_name(dies)}'s kernel drops it there "
               f"and {answer}{ended}")
    again = f"back on {where}, its source masqueraded anew" if renat else f"back on {where} as it was"
    decision = f"{again}: a loop ({' → '.join(_name(h) for h in routers)} → ...); its TTL runs out here"
    commands = [f"ip netns exec {sender} sysctl {DEFAULT_TTL}", shown,
                f"ip netns exec {dies.netns} tcpdump -nvi {iif} 'icmp or host {client}'"]
    return Loop(dies.netns, iif, decision, problem, commands,
                {"loop": [h.netns for h in routers], "sent_ttl": ttl, "ttl_expires": dies.netns, "laps": laps,
                 "time_exceeded_from": src, **({"time_exceeded_held": True} if held else {})})
