"""NAT as conntrack remembers it: what a namespace's DNAT, masquerade and their reversal did to the packet.

kube-proxy's rules DNAT a packet for a ClusterIP or a nodePort to one
endpoint, picked at random, in PREROUTING (OUTPUT for a node's own sockets);
Flannel's and the gateway's MASQUERADE rewrite the source in POSTROUTING.
iptables decides once per connection and conntrack keeps the result as two
tuples, the original direction and the reply it expects::

    orig:  10.244.0.2:40000 → 10.96.0.20:80       what the client sent
    reply: 10.244.1.3:8080  → 10.244.0.2:40000    what the endpoint will answer

So the walker reads the translation from the packet's entry instead of
re-running the rules. A packet matching the original tuple gets the reply's
source as its destination (DNAT) and the reply's destination as its source
(SNAT); a packet matching the reply tuple gets the reverse (un-SNAT in
PREROUTING, un-DNAT in POSTROUTING), which is how the client sees answers
from the address it sent to.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Callable, Iterable, NamedTuple

from netlab.kernel.iptables import command as ipt_command
from netlab.plan.nftables import MASQUERADING
from netlab.trace import kubeproxy_nft
from netlab.trace.facts import CtEntry
from netlab.trace.flow import Flow
from netlab.trace.labmap import LabMap


class Hit(NamedTuple):
    """The packet's conntrack entry, and which of its two directions the packet is."""

    entry: CtEntry
    direction: str  # "orig" | "reply"


def find(entries: Iterable[CtEntry], flow: Flow) -> Hit | None:
    """``flow``'s entry (an ICMP error's: its quoted flow's, in the error's direction, Flow.tracked)."""
    for entry in entries:
        direction = entry.direction_of(flow.tracked())
        if direction:
            return Hit(entry, direction)
    return None


def _other(hit: Hit) -> Flow:
    return hit.entry.reply if hit.direction == "orig" else hit.entry.orig


def _error(flow: Flow, hit: Hit, change: Callable[[Flow, Hit], Flow]) -> Flow:
    """An ICMP error after the change ``change`` makes to the flow it goes with (Flow.tracked): its quote is
    rewritten back to the packet it is about, and its outer address the change rewrites with it (conntrack's
    nf_nat_icmp_reply_translation): a destination's un-SNAT, a source's un-DNAT."""
    assert flow.quoted is not None
    was = flow.tracked()
    now = change(was, hit)
    if now == was:
        return flow
    out = replace(flow, quoted=now.reversed())
    return out.with_dst(now.dst, None) if now.dst != was.dst else out.with_src(now.src or "", None)


def new_destination(flow: Flow, hit: Hit) -> Flow:
    """PREROUTING/OUTPUT: the packet after the destination change (a DNAT, or a reply's un-SNAT)."""
    if flow.quoted is not None:
        return _error(flow, hit, new_destination)
    other = _other(hit)
    # An ICMP echo id is remapped by the SNAT side only: un-done here for a reply, kept for a request.
    keep_id = flow.proto == "icmp" and hit.direction == "orig"
    return flow.with_dst(other.src, flow.dport if keep_id else other.sport)


def new_source(flow: Flow, hit: Hit) -> Flow:
    """POSTROUTING: the packet after the source change (a masquerade, or a reply's un-DNAT)."""
    if flow.quoted is not None:
        return _error(flow, hit, new_source)
    other = _other(hit)
    keep_id = flow.proto == "icmp" and hit.direction == "reply"
    return flow.with_src(other.dst, flow.sport if keep_id else other.dport)


def service_facts(lab: LabMap, old: Flow, new: Flow, hit: Hit, own: bool = False, lb: bool = True) -> dict[str, Any]:
    """For a Service's DNAT: the Service, kube-proxy's chains and the endpoint it picked (``own``: the node's
    own packet, which externalTrafficPolicy Local short-circuits to every endpoint; ``lb``: a DNAT of a
    LoadBalancer IP is kube-proxy's, in a node, not the balancer's)."""
    if hit.direction != "orig":
        return {}
    svc = lab.service_for(old.dst, old.dport, old.proto, lb)
    if svc is None:
        return {}
    out: dict[str, Any] = {"service": svc.name, "svc_chain": svc.chain_for(old.src, old.dst, own)}
    # the address the packet was sent to, in probe's words (its service.via): a node's is a nodePort's
    out["via"] = "ClusterIP" if old.dst == svc.ip else "LoadBalancer" if old.dst == svc.lb_ip \
        else "ExternalIP" if old.dst in svc.external_ips else "NodePort"
    ep = svc.endpoint(new.dst, new.dport)
    if ep:
        out.update(endpoint=ep.pod, endpoint_ip=ep.ip, endpoint_port=ep.port, sep_chain=ep.sep_chain)
    return out


def _id_change(old: Flow, new: Flow) -> str:
    """An ICMP echo id the translation rewrote, in words ("" when it stays, or for TCP and UDP, whose
    endpoints carry the port): a masquerade with ``--random-fully`` (Flannel's, kube-proxy's) remaps the echo
    id as it does a source port, and conntrack undoes it on the replies."""
    if old.proto != "icmp" or old.sport == new.sport:
        return ""
    return f", echo id {old.sport} → {new.sport}"


def _stays(old: Flow, new: Flow, which: str) -> str:
    """When the address stays and only the port or echo id changed: say so, or the row reads as a no-op."""
    if getattr(old, which) != getattr(new, which):
        return ""
    what = "echo id" if old.proto == "icmp" else ("source port" if which == "src" else "destination port")
    return f" (the address stays: only the {what} changes)"


def _back_to(f: Flow) -> str:
    """The source a masquerade's replies get back: the address, with the port or the echo id."""
    return f"{f.endpoint('src')} id {f.sport}" if f.proto == "icmp" and f.sport is not None else f.endpoint('src')


def describe(lab: LabMap, which: str, hit: Hit, old: Flow, new: Flow, own: bool = False,
             via: str | None = None, stale: bool = False, lb: bool = True, nodeport: list[str] | tuple = (),
             how: str = "") -> str:
    """The row's text for a change of the destination (``which`` = "dst") or of the source ("src"); ``own``:
    the node's own packet (see :func:`service_facts`); ``via``: the endpoint chain that DNATed it, when a counter
    says it is not the endpoint's own (detour.py); ``stale``: the DNAT is an older conntrack entry's, to no
    endpoint (wrongdnat.py): no rule of the Service chose it; ``lb``: see :func:`service_facts`; ``nodeport``: the
    chains of kube-proxy's nodePort rules the packet crossed here, from the dispatch to its endpoint's (a packet
    to the node's own address and a nodePort, as a LoadBalancer's balancer sends it); ``how``: who DNATed a packet
    no Service's rules did, in words after the addresses (portmap's hostPort rule: hostport.words)."""
    if which == "dst" and hit.direction == "orig":
        svc = lab.service_for(old.dst, old.dport, old.proto, lb)
        text = f"DNAT {old.endpoint('dst')} → {new.endpoint('dst')}{'' if svc else how}"
        if svc and stale:
            text += (f": conntrack's existing entry for this flow DNATs it to {lab.name_ip(new.dst)}, not kube-proxy's "
                     f"rules for Service {svc.name} (they never saw the packet)")
        elif svc:
            ep = svc.endpoint(new.dst, new.dport)
            who = f"endpoint {ep.pod}" if ep else f"endpoint {lab.name_ip(new.dst)}"
            sep = f" → {via or ep.sep_chain}" if ep else ""
            if nodeport:  # the nodePort path: the dispatch's nodePort chain, the external chain, then the pick
                picked = svc.chain_for(old.src, old.dst, own)
                way = [c for c in nodeport if c not in (picked, ep.sep_chain if ep else None, via)]
                text += (f": the nodePort path, {old.dport} on {lab.name_ip(old.dst)}: Service {svc.name} picked "
                         f"{who} ({' → '.join([*way, picked])}{sep})")
            else:
                text += f": Service {svc.name} picked {who} ({svc.chain_for(old.src, old.dst, own)}{sep})"
        reply = hit.entry.reply
        return text + (f"; conntrack will rewrite the replies {reply.endpoint('src')} → {reply.endpoint('dst')} "
                       f"to come from {old.endpoint('dst')}")
    if which == "dst":
        return (f"conntrack undoes the masquerade: destination {old.endpoint('dst')} → {new.endpoint('dst')}"
                f"{_id_change(old, new)}{_stays(old, new, 'dst')} (a reply to a connection this namespace SNATed)")
    if hit.direction == "orig":
        return (f"MASQUERADE: source {old.endpoint('src')} → {new.endpoint('src')}{_id_change(old, new)}"
                f"{_stays(old, new, 'src')}; conntrack will rewrite the replies back to {_back_to(old)}")
    return (f"conntrack reverse translation (un-DNAT): source {old.endpoint('src')} → {new.endpoint('src')}"
            f"{_id_change(old, new)}, so the client sees replies from the address it sent to")


def dnated_here(hit: Hit) -> bool:
    """The entry's connection was DNATed in this namespace: the reply comes from another address or port than the
    original went to. An ICMP echo's id is no destination: a masquerade remaps it (``--random-fully``), so the
    reply's id differs from the request's after a source-only rewrite too."""
    o, reply = hit.entry.orig, hit.entry.reply
    if o.proto == "icmp":
        return reply.src != o.dst
    return (reply.src, reply.sport) != (o.dst, o.dport)


def list_entries(netns: str, f: Flow) -> str:
    """``conntrack -L`` of the entries from ``f``'s source to its destination in ``netns``."""
    return f"ip netns exec {netns} conntrack -L -p {f.proto} --orig-src {f.src} --orig-dst {f.dst}"


def commands(lab: LabMap, netns: str, hit: Hit, which: str, kube_proxy_table: bool = True,
             by_iptables: bool = False) -> list[str]:
    """What a learner runs to see the same: the entry, and the rules that made the translation.

    ``which`` is the address that changed, as for :func:`describe`. A DNAT,
    and its reversal on the replies (un-DNAT), is kube-proxy's: in the nat
    table (``iptables-save -c``, with the counters trace reads) in iptables
    mode; in nftables mode in kube-proxy's own table, where the Service's
    chain (its numgen map) and the endpoint's (its ``dnat to``) show it, and
    iptables holds none of it. A masquerade, and its reversal (un-SNAT), is
    Flannel's, whose rules stay iptables in both modes, or, in nftables mode,
    kube-proxy's ``masquerading`` chain for a packet it marked: a connection
    kube-proxy DNATed here (Flannel's first rule returns on kube-proxy's mark,
    and kube-proxy marks every Service packet that needs a masquerade).
    Without kube-proxy's table on the node (``kube_proxy_table`` False: deleted),
    iptables' nat table is all there is to list; so it is when an iptables
    rule's counter says it masqueraded the packet (``by_iptables``), and for a
    connection DNATed here by no Service: portmap's hostPort rules, iptables in
    both modes, with their masquerade (CNI-HOSTPORT-MASQ) of a hairpin.
    """
    o, reply = hit.entry.orig, hit.entry.reply
    out = [list_entries(netns, o)]
    save = f"ip netns exec {netns} {ipt_command('iptables-save')} -c -t nat"
    if netns not in lab.nft_netns or not kube_proxy_table:
        return out + [save]
    dnated = dnated_here(hit)
    svc = lab.service_for(o.dst, o.dport, o.proto)
    if dnated and svc is None:  # no Service's DNAT: portmap's hostPort rules (and its 0x2000 masquerade), iptables
        return out + [save]
    if (which == "dst") != (hit.direction == "orig"):  # a masquerade, or a reply's un-SNAT
        masquerading = kubeproxy_nft.list_chain(netns, MASQUERADING)
        # not DNATed here: Flannel's; kube-proxy's only for a packet it marked yet did not DNAT (a broken chain)
        if by_iptables and not dnated:  # Flannel's rule counted it: kube-proxy's chain skipped it
            return out + [save]
        return out + ([masquerading] if dnated else [save, masquerading])
    ep = svc.endpoint(reply.src, reply.sport) if svc else None
    if svc is None or ep is None:
        return out + [f"ip netns exec {netns} nft list table {kubeproxy_nft.TABLE}"]
    outside = [svc.ext_chain] if svc.ext_chain and o.dst != svc.ip else []  # a nodePort, the LB's address
    return out + [kubeproxy_nft.list_chain(netns, c) for c in outside + [svc.svc_chain, ep.sep_chain]]
